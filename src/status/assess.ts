import type { ClusterConfig } from '../config/schema.js';
import { hexId, type EndpointErrorKind } from '../etcd/pool.js';
import type { ClusterProbe, EndpointProbe, EndpointStatus, ProbedMember } from '../etcd/probe.js';
import { hostOfUrl as hostOf } from './members.js';

/** The share of the backend quota past which a database is "near the quota" (a warning, and a defrag diagnosis). */
export const DB_NEAR_QUOTA = 0.8;

export type Verdict = 'HEALTHY' | 'DEGRADED' | 'QUORUM_LOST' | 'UNREACHABLE';

export interface MemberRow {
  name: string; // "(not started)" for a member added but never started
  idHex: string | null; // null only when no member answered and the row comes from the inventory
  peerURLs: string[];
  clientURLs: string[];
  started: boolean;
  learner: boolean;
  reachable: boolean;
  error: { kind: EndpointErrorKind | 'not_started'; message: string } | null;
  isLeader: boolean;
  status: EndpointStatus | null;
  alarms: string[];
}

export interface StatusReport {
  cluster: string;
  at: Date;
  tookMs: number;
  verdict: Verdict;
  summary: string; // one line: what the verdict means
  next: string; // one line: which /etcd command to use next
  voters: number;
  quorum: number;
  healthyVoters: number;
  /** How many more voting members may fail before quorum is lost (0 when it is already lost). */
  tolerance: number;
  clusterIdHex: string | null;
  leaderHex: string | null;
  members: MemberRow[];
  warnings: string[];
  /**
   * Endpoints that answered but serve no member of this cluster's member list: a stale
   * member of another cluster (another cluster ID), or a member removed from the list
   * whose etcd still runs. Left out of the rows; what a fence is for.
   */
  strangers?: Stranger[];
}

export interface Stranger {
  endpoint: string;
  host: string;
  why: 'other-cluster' | 'removed';
  clusterIdHex: string;
  memberIdHex: string;
}


/** Pure: turns what the members said into a verdict, rows and warnings. */
export function assessCluster(cluster: ClusterConfig, probe: ClusterProbe): StatusReport {
  const answered = probe.endpoints.filter((e): e is Extract<EndpointProbe, { ok: true }> => e.ok);
  const warnings: string[] = [];

  // When endpoints disagree on the cluster ID, the cluster is the one most endpoints belong to:
  // a stale member of an old cluster may well think it leads a cluster of its own.
  const byCluster = new Map<string, number>();
  for (const e of answered) byCluster.set(e.status.clusterId, (byCluster.get(e.status.clusterId) ?? 0) + 1);
  const mainId = [...byCluster.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];

  // The member list is taken from the freshest view: the leader itself if it answered,
  // else the member with the highest term and index.
  const source = [...answered]
    .filter((e) => e.members && e.status.clusterId === mainId)
    .sort(
      (a, b) =>
        Number(b.status.memberId === b.status.leader) - Number(a.status.memberId === a.status.leader) ||
        b.status.raftTerm - a.status.raftTerm ||
        b.status.raftIndex - a.status.raftIndex,
    )[0];

  if (!source) return unreachableReport(cluster, probe);

  const clusterId = source.status.clusterId;
  const foreign = answered.filter((e) => e.status.clusterId !== clusterId);
  if (foreign.length > 0) {
    warnings.push(
      `Endpoints report different cluster IDs: ${[source, ...foreign]
        .map((e) => `${e.endpoint} → ${hexId(e.status.clusterId)}`)
        .join(', ')}. ${foreign.map((e) => e.endpoint).join(', ')} belong(s) to another cluster (a stale member that came back?) and are left out below.`,
    );
  }
  const statusById = new Map(answered.filter((e) => e.status.clusterId === clusterId).map((e) => [e.status.memberId, e.status]));
  const listedIds = new Set(source.members!.map((m) => m.id));
  const strangers: Stranger[] = answered
    .filter((e) => e.status.clusterId !== clusterId || !listedIds.has(e.status.memberId))
    .map((e) => ({
      endpoint: e.endpoint,
      host: hostOf(e.endpoint),
      why: e.status.clusterId !== clusterId ? ('other-cluster' as const) : ('removed' as const),
      clusterIdHex: hexId(e.status.clusterId),
      memberIdHex: hexId(e.status.memberId),
    }));
  for (const s of strangers.filter((x) => x.why === 'removed')) {
    warnings.push(`${s.endpoint} answers as member ${s.memberIdHex}, which is not in the member list: a removed member whose etcd still runs.`);
  }
  const errorByHost = new Map(
    probe.endpoints.filter((e): e is Extract<EndpointProbe, { ok: false }> => !e.ok).map((e) => [hostOf(e.endpoint), e.error]),
  );

  const leaderId = source.status.leader !== '0' ? source.status.leader : null;
  const alarmsById = new Map<string, string[]>();
  for (const a of probe.alarms ?? []) alarmsById.set(a.memberId, [...(alarmsById.get(a.memberId) ?? []), a.alarm]);

  const members: MemberRow[] = source.members!.map((m) => memberRow(m, statusById.get(m.id) ?? null, errorByHost, leaderId, alarmsById));
  members.sort((a, b) => a.name.localeCompare(b.name));

  const voters = members.filter((m) => !m.learner);
  const quorum = Math.floor(voters.length / 2) + 1;
  const healthyVoters = voters.filter((m) => m.reachable && m.status && m.status.leader !== '0').length;
  const tolerance = Math.max(0, healthyVoters - quorum);
  const allAlarms = [...new Set((probe.alarms ?? []).map((a) => a.alarm))];

  addMemberWarnings(cluster, members, warnings);
  addEndpointWarnings(cluster, members, warnings);
  if (probe.alarms === null && healthyVoters >= quorum) warnings.push('The alarm list could not be read (no answer before the deadline).');
  const leaders = new Set(answered.filter((e) => e.status.clusterId === clusterId && e.status.leader !== '0').map((e) => e.status.leader));
  if (leaders.size > 1) warnings.push(`Members disagree on the leader: ${[...leaders].map(hexId).join(' vs ')} (an election may be in progress).`);

  const base = {
    cluster: cluster.name,
    at: probe.at,
    tookMs: probe.tookMs,
    voters: voters.length,
    quorum,
    healthyVoters,
    clusterIdHex: hexId(clusterId),
    leaderHex: leaderId ? hexId(leaderId) : null,
    members,
    warnings,
    strangers,
  };

  if (healthyVoters < quorum) {
    return {
      ...base,
      verdict: 'QUORUM_LOST',
      tolerance: 0,
      summary: `Only ${healthyVoters} of ${voters.length} voting members are up with a leader; ${quorum} are needed. The cluster accepts no writes and Kubernetes cannot change anything.`,
      next: 'Confirm the lost members are really down, then `/etcd restore-quorum` restores quorum from the most up-to-date survivor or from a snapshot.',
    };
  }
  const down = members.filter((m) => !m.reachable);
  if (down.length === 0 && allAlarms.length === 0) {
    return {
      ...base,
      verdict: 'HEALTHY',
      tolerance,
      summary: `All ${members.length} members answer and agree on leader ${base.leaderHex}; the cluster can lose ${tolerance} more voting member${tolerance === 1 ? '' : 's'}.`,
      next: 'Nothing to repair.',
    };
  }
  const parts: string[] = [];
  if (down.length) parts.push(`${down.map((m) => m.name).join(', ')} ${down.length === 1 ? 'does' : 'do'} not answer`);
  if (allAlarms.length) parts.push(`alarm${allAlarms.length > 1 ? 's' : ''} ${allAlarms.join(', ')} raised`);
  const risk =
    tolerance === 0 ? 'One more failure loses quorum.' : `It can lose ${tolerance} more voting member${tolerance === 1 ? '' : 's'}.`;
  const firstDown = down.find((m) => m.started) ?? down[0];
  return {
    ...base,
    verdict: 'DEGRADED',
    tolerance,
    summary: `Quorum holds (${healthyVoters} of ${voters.length} voters up, ${quorum} needed), but ${parts.join(' and ')}. ${risk}`,
    next: firstDown
      ? `If ${firstDown.name} will not come back by itself, \`/etcd replace ${firstDown.name}\` replaces it.`
      : allAlarms.includes('NOSPACE')
        ? 'NOSPACE: the cluster only accepts reads and deletes until space is freed (compact, defragment) and the alarm is disarmed.'
        : 'Check the alarm on the member named above before anything else.',
  };
}

function memberRow(
  m: ProbedMember,
  status: EndpointStatus | null,
  errorByHost: Map<string, { kind: EndpointErrorKind; message: string }>,
  leaderId: string | null,
  alarmsById: Map<string, string[]>,
): MemberRow {
  const started = m.name !== '' || m.clientURLs.length > 0;
  const hosts = [...m.clientURLs, ...m.peerURLs].map(hostOf);
  const error = status
    ? null
    : !started
      ? { kind: 'not_started' as const, message: 'added to the member list but never started' }
      : (hosts.map((h) => errorByHost.get(h)).find(Boolean) ?? { kind: 'error' as const, message: 'no configured endpoint serves this member' });
  return {
    name: m.name || '(not started)',
    idHex: hexId(m.id),
    peerURLs: m.peerURLs,
    clientURLs: m.clientURLs,
    started,
    learner: m.isLearner,
    reachable: status !== null,
    error,
    isLeader: leaderId === m.id,
    status,
    alarms: alarmsById.get(m.id) ?? [],
  };
}

function addMemberWarnings(cluster: ClusterConfig, members: MemberRow[], warnings: string[]): void {
  const reachable = members.filter((m) => m.status);
  const maxIndex = Math.max(0, ...reachable.map((m) => m.status!.raftIndex));
  const lagLimit = cluster.etcd.lagWarnEntries;
  for (const m of members) {
    if (!m.started) warnings.push(`A member with peer URL ${m.peerURLs.join(', ')} (${m.idHex}) was added but never started.`);
    else if (!m.status) warnings.push(`${m.name} (${m.idHex}) is in the member list but does not answer: ${m.error?.message}.`);
    if (m.learner) warnings.push(`${m.name} is a learner (not voting): a membership change is in progress or was left half-done.`);
    if (!m.status) continue;
    const lag = maxIndex - m.status.raftIndex;
    if (lag > lagLimit) warnings.push(`${m.name} lags by ${lag} raft entries (index ${m.status.raftIndex} against ${maxIndex}).`);
    const unapplied = m.status.raftIndex - m.status.raftAppliedIndex;
    if (unapplied > lagLimit) warnings.push(`${m.name} has ${unapplied} committed entries not yet applied.`);
    if (m.status.dbSize > DB_NEAR_QUOTA * cluster.etcd.quotaBytes) {
      warnings.push(`${m.name}'s database is ${formatBytes(m.status.dbSize)}, over 80% of the ${formatBytes(cluster.etcd.quotaBytes)} quota.`);
    }
    for (const e of m.status.errors) warnings.push(`${m.name} reports: ${e}`);
  }
}

function addEndpointWarnings(cluster: ClusterConfig, members: MemberRow[], warnings: string[]): void {
  const listed = new Set(members.flatMap((m) => m.clientURLs));
  for (const ep of cluster.etcd.endpoints) {
    if (!listed.has(ep)) warnings.push(`Endpoint ${ep} is in the inventory but no member lists it as a client URL.`);
  }
  const configured = new Set(cluster.etcd.endpoints);
  for (const m of members) {
    for (const url of m.clientURLs) {
      if (!configured.has(url)) warnings.push(`${m.name} serves clients at ${url}, which is not in the inventory's endpoints.`);
    }
  }
}

/** No endpoint answered: rows come from the inventory, each with the error its host gave. */
function unreachableReport(cluster: ClusterConfig, probe: ClusterProbe): StatusReport {
  const errors = probe.endpoints.map((e) => (e.ok ? null : e.error));
  const members: MemberRow[] = cluster.members.map((m) => {
    const ep = probe.endpoints.find((e) => hostOf(e.endpoint) === m.host);
    return {
      name: m.name,
      idHex: null,
      peerURLs: [],
      clientURLs: ep ? [ep.endpoint] : [],
      started: true,
      learner: false,
      reachable: false,
      error: ep && !ep.ok ? ep.error : { kind: 'error', message: 'no configured endpoint on this host' },
      isLeader: false,
      status: null,
      alarms: [],
    };
  });
  const allRefused = errors.every((e) => e?.kind === 'refused');
  const voters = cluster.members.length;
  const base = {
    cluster: cluster.name,
    at: probe.at,
    tookMs: probe.tookMs,
    voters,
    quorum: Math.floor(voters / 2) + 1,
    healthyVoters: 0,
    tolerance: 0,
    clusterIdHex: null,
    leaderHex: null,
    members,
    warnings: [] as string[],
  };
  if (allRefused) {
    return {
      ...base,
      verdict: 'QUORUM_LOST',
      summary: 'Every endpoint refused the connection: no etcd member is running. The cluster accepts no reads or writes.',
      next: 'Check the members on their hosts (`crictl ps`, kubelet logs), then `/etcd restore-quorum` restores quorum from a surviving data dir or a snapshot.',
    };
  }
  return {
    ...base,
    verdict: 'UNREACHABLE',
    summary: 'No member answered. Either every member is down or the bot cannot reach them (network, firewall, TLS files).',
    next: 'Check from a master host (`etcdctl endpoint status`); if the members are down, `/etcd restore-quorum`.',
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}
