import { backupId, type BackupFacts } from '../backup/store.js';
import type { ClusterConfig, Inventory, MemberConfig } from '../config/schema.js';
import { memberPlace, platformOf } from '../platform/index.js';
import type { MemberRow, StatusReport } from '../status/assess.js';
import { hostOfUrl, listenAddrsOf } from '../status/members.js';
import { kubeCheckStep } from './kube-check-plan.js';
import { newRun } from './new-run.js';
import type { PlanOutcome } from './replace-plan.js';
import type { ObservedState, StepSpec } from './types.js';

/** What a read-only look at each host found (see worker/host-probe). */
export type HostView =
  | { name: string; reachable: true; listening: boolean; why?: string; hasConfig: boolean; hasData: boolean; offlineRevision: number | null }
  | { name: string; reachable: false; error: string };

export interface RestoreQuorumRequest {
  runId: string;
  from?: string;
  snapshot?: BackupFacts;
  requestedBy: string;
  channelId: string;
}

/**
 * The places on one host a step touches, derived from the inventory and the
 * run; its URLs and the addresses its etcd may serve on also from the member
 * list, when the member is in it (a member on other ports than 2379/2380).
 */
export function hostPlaces(cluster: ClusterConfig, m: MemberConfig, runId: string, rows: MemberRow[] = []) {
  const p = memberPlace(cluster, m, runId);
  const row = rows.find((r) => r.name === m.name) ?? rows.find((r) => r.peerURLs.some((u) => hostOfUrl(u) === m.host));
  return {
    name: m.name,
    host: m.host,
    config: p.config,
    configAside: p.configAside,
    asideDir: p.asideDir,
    dataDir: p.dataDir,
    dataAside: p.dataAside,
    pkiDir: p.pkiDir,
    clientHost: m.host,
    peerUrl: row?.peerURLs[0] ?? `https://${m.host}:2380`,
    clientUrl: cluster.etcd.endpoints.find((e) => hostOfUrl(e) === m.host) ?? row?.clientURLs[0] ?? `https://${m.host}:2379`,
    listen: listenAddrsOf(cluster.etcd.endpoints, m, rows),
  };
}

/** Each master's API server as the platform stops it while etcd is restored, and the plan's words for it. */
export function apiserverPlaces(cluster: ClusterConfig, members: MemberConfig[], runId: string) {
  const platform = platformOf(cluster);
  return members.map((m) => platform.apiserverPlace(m, runId));
}

/** "on root@10.0.0.1:22: mv … | on …": the API servers' stop or start, host by host, for a plan. */
export function apiserverOperation(cluster: ClusterConfig, places: ReturnType<typeof apiserverPlaces>, action: 'stop' | 'start'): string {
  const platform = platformOf(cluster);
  return places
    .map((a) => {
      const m = cluster.members.find((x) => x.name === a.name)!;
      return `on ${m.ssh.user}@${m.host}:${m.ssh.port}: ${platform.apiserverText(a, action)}`;
    })
    .join(' | ');
}

/**
 * "Restore quorum after the majority is lost" from the vendor runbooks, as data.
 * Picks the survivor (highest raft index, ties by applied index; a stopped
 * member by the revision of its database read offline), refuses when a member
 * that should be dead still runs, and plans either force-new-cluster on the
 * survivor or a restore of a verified snapshot onto it, then grows the
 * membership back one member at a time.
 */
export function planRestoreQuorum(
  inventory: Inventory,
  cluster: ClusterConfig,
  report: StatusReport,
  state: ObservedState,
  hosts: HostView[],
  req: RestoreQuorumRequest,
  now: Date,
): PlanOutcome {
  if (report.verdict === 'HEALTHY' || report.verdict === 'DEGRADED') {
    return {
      ok: false,
      reason: `quorum holds (${report.healthyVoters} of ${report.voters} voters up with a leader). For a failed member use \`/etcd replace <member> ${cluster.name}\`; restore-quorum is for a lost majority.`,
    };
  }
  const row = (name: string): MemberRow | undefined => report.members.find((m) => m.name === name && m.status);
  const hostOf = (name: string) => hosts.find((h) => h.name === name);
  const answering = cluster.members.filter((m) => row(m.name)).sort((a, b) => {
    const x = row(a.name)!.status!;
    const y = row(b.name)!.status!;
    return y.raftIndex - x.raftIndex || y.raftAppliedIndex - x.raftAppliedIndex;
  });
  const stoppedWithData = cluster.members
    .filter((m) => !row(m.name))
    .map((m) => ({ m, h: hostOf(m.name) }))
    .filter((x) => x.h?.reachable && !x.h.listening && x.h.hasData && x.h.hasConfig && x.h.offlineRevision !== null)
    .sort((a, b) => (b.h as { offlineRevision: number }).offlineRevision - (a.h as { offlineRevision: number }).offlineRevision)
    .map((x) => x.m);

  let survivor: MemberConfig | undefined;
  if (req.from) {
    survivor = cluster.members.find((m) => m.name === req.from);
    if (!survivor) return { ok: false, reason: `--from ${req.from}: no such member in the inventory (${cluster.members.map((m) => m.name).join(', ')})` };
    const h = hostOf(survivor.name);
    if (!req.snapshot && !row(survivor.name) && !stoppedWithData.includes(survivor)) {
      return { ok: false, reason: `--from ${req.from}: it does not answer and its host shows no stopped etcd with data and a config to start it from (${h && !h.reachable ? h.error : 'no data'}).` };
    }
    if (req.snapshot && !row(survivor.name) && !h?.reachable) return { ok: false, reason: `--from ${req.from}: its host cannot be reached over SSH (${h && !h.reachable ? h.error : 'unknown'}).` };
  } else if (req.snapshot) {
    survivor = answering[0] ?? cluster.members.find((m) => hostOf(m.name)?.reachable);
  } else {
    survivor = answering[0] ?? stoppedWithData[0];
  }
  if (!survivor) {
    return {
      ok: false,
      reason: req.snapshot
        ? 'no member answers and no member host can be reached over SSH to restore the snapshot onto.'
        : `no member has data left to restore from (none answers; no stopped member with a database was found). Restore from a backup: \`/etcd restore-quorum ${cluster.name} --snapshot <id>\` (\`/etcd backups\` lists them).`,
    };
  }

  // Fencing, checked now and again at the step: an old member that comes back causes "cluster ID mismatch".
  const others = cluster.members.filter((m) => m !== survivor);
  const unconfirmed: string[] = [];
  for (const m of others) {
    if (row(m.name)) {
      return { ok: false, reason: `${m.name} still answers on ${hostPlaces(cluster, m, req.runId, report.members).clientUrl}: it is running, not dead. Stop it first, or name it with \`--from ${m.name}\`. Nothing was changed.` };
    }
    const h = hostOf(m.name);
    if (h?.reachable && h.listening) {
      return {
        ok: false,
        reason: `${m.name} is supposed to be dead, but etcd still ${h.why ?? `listens on ${m.host}:2379`} (seen over SSH) though it does not answer: it is hung, not dead. Stop it on the host (or fix it: it may be the better survivor), then ask again. Nothing was changed.`,
      };
    }
    if (!h?.reachable) unconfirmed.push(m.name);
  }

  const sRow = row(survivor.name);
  const sHost = hostOf(survivor.name);
  const survivorRevision = sRow?.status?.revision ?? (sHost?.reachable ? sHost.offlineRevision : null) ?? 0;
  const seen = [
    ...report.members.filter((m) => m.status).map((m) => m.status!.revision),
    ...hosts.map((h) => (h.reachable ? (h.offlineRevision ?? 0) : 0)),
    state.revision,
  ];
  const lastSeen = Math.max(0, ...seen);
  const restoredRevision = req.snapshot ? req.snapshot.revision : survivorRevision;
  const lost = Math.max(0, lastSeen - restoredRevision);

  const platform = platformOf(cluster);
  const s = hostPlaces(cluster, survivor, req.runId, report.members);
  const sUrl = cluster.etcd.endpoints.find((e) => e.includes(`//${survivor!.host}:`)) ?? s.clientUrl;
  const ssh = (m: MemberConfig) => `${m.ssh.user}@${m.host}:${m.ssh.port}`;
  const steps: StepSpec[] = [];
  const token = `${cluster.name}-${req.runId}`;

  if (req.snapshot) {
    steps.push({
      kind: 'verify-backup',
      title: `Verify backup ${req.snapshot.id}`,
      destructive: false,
      operation: `sha256 trailer and etcdctl snapshot status of ${req.snapshot.snapshotFile} must still match what was recorded (revision ${req.snapshot.revision}, sha256 ${req.snapshot.sha256.slice(0, 16)}…)`,
      params: { backupId: req.snapshot.id },
    });
  } else if (sRow) {
    steps.push({
      kind: 'snapshot',
      title: `Snapshot ${survivor.name} before touching anything`,
      destructive: false,
      operation: `maintenance.snapshot() from ${survivor.name} (${sUrl}) → backup ${backupId(now)} in ${inventory.backups.dir}/${cluster.name}; verified`,
      params: { from: survivor.name, backupId: backupId(now) },
    });
  }

  // As /etcd restore does: nothing may write to (or serve from) etcd while a backup replaces its data.
  const apis = req.snapshot ? apiserverPlaces(cluster, cluster.members.filter((m) => !unconfirmed.includes(m.name)), req.runId) : [];
  if (req.snapshot) {
    steps.push({
      kind: 'apiservers',
      title: 'Stop kube-apiserver on every reachable master',
      destructive: true,
      operation: apiserverOperation(cluster, apis, 'stop'),
      params: { action: 'stop', hosts: JSON.stringify(apis) },
    });
  }

  const fenced = others.map((m) => hostPlaces(cluster, m, req.runId, report.members));
  steps.push({
    kind: 'fence',
    title: `Fence ${others.map((m) => m.name).join(', ')}`,
    destructive: true,
    operation: [
      ...fenced
        .filter((f) => !unconfirmed.includes(f.name))
        .map((f) => `on ${ssh(others.find((m) => m.name === f.name)!)}: refuse if etcd still runs (anything on ${f.listen.join(', ')}, an etcd process on ${f.dataDir}); ${platform.stopText(f)}; mv ${f.dataDir} ${f.dataAside}`),
      ...unconfirmed.map((n) => `${n}: host unreachable over SSH (${(hostOf(n) as { error?: string } | undefined)?.error ?? 'unknown'}); approving confirms it is down and will stay down until it is rebuilt`),
    ].join(' | '),
    params: { hosts: JSON.stringify(fenced), unconfirmed: JSON.stringify(unconfirmed) },
  });

  if (req.snapshot) {
    steps.push({
      kind: 'restore-snapshot',
      title: `Restore backup ${req.snapshot.id} onto ${survivor.name} as a one-member cluster`,
      destructive: true,
      operation: `on ${ssh(survivor)}: ${platform.stopText(s)}; mv ${s.dataDir} ${s.dataAside}; upload ${req.snapshot.snapshotFile}; etcdctl snapshot restore --name ${survivor.name} --initial-cluster ${survivor.name}=${s.peerUrl} --initial-cluster-token ${token} --initial-advertise-peer-urls ${s.peerUrl} --data-dir ${s.dataDir}; refuse unless the restored database reads revision ${req.snapshot.revision} offline (etcdctl snapshot status); write ${s.config} with that initial cluster and token; ${platform.startText('start')}; wait until it leads`,
      params: { ...pick(s), backupId: req.snapshot.id, token, endpoint: sUrl },
    });
  } else {
    steps.push({
      kind: 'force-new-cluster',
      title: `Start ${survivor.name} with --force-new-cluster, then without it`,
      destructive: true,
      operation: `on ${ssh(survivor)}: keep ${s.config} as ${s.configAside}; write it with --force-new-cluster (${platform.startText('restart')}); wait until ${survivor.name} leads a one-member cluster; write it back without the flag, wait for the restart, confirm the flag is gone from ${s.config}`,
      params: { ...pick(s), endpoint: sUrl },
    });
  }

  // Grow back one member at a time: learner, start with state existing, catch up, promote.
  const members = [survivor, ...others];
  others.forEach((m, i) => {
    const f = hostPlaces(cluster, m, req.runId, report.members);
    const initialCluster = members
      .slice(0, i + 2)
      .map((x) => `${x.name}=${hostPlaces(cluster, x, req.runId, report.members).peerUrl}`)
      .sort()
      .join(',');
    steps.push(
      {
        kind: 'member-add-learner',
        title: `Add ${m.name} back as a learner`,
        destructive: false,
        operation: `cluster.memberAdd(peerURLs=[${f.peerUrl}], isLearner=true), retried while etcd answers "unhealthy cluster"`,
        params: { name: m.name, peerUrl: f.peerUrl },
      },
      {
        kind: 'write-manifest',
        title: `Start ${m.name} with state "existing"`,
        destructive: false,
        host: m.name,
        operation: `on ${ssh(m)}: write ${f.config} from ${f.configAside} (or, if it had none, from ${survivor!.name}'s ${platform.configNoun} adapted to ${m.host}) with --initial-cluster-state=existing --initial-cluster=${initialCluster}; ${platform.startText('start')} on an empty ${f.dataDir}`,
        params: {
          config: f.config,
          configAside: f.configAside,
          asideDir: f.asideDir,
          name: m.name,
          peerUrl: f.peerUrl,
          initialCluster,
          dataDir: f.dataDir,
          templateFrom: survivor!.name,
          templateConfig: s.config,
          templateIp: survivor!.host,
          templateDataDir: s.dataDir,
          templatePkiDir: s.pkiDir,
          targetIp: m.host,
          targetPkiDir: f.pkiDir,
        },
      },
      {
        kind: 'wait-caught-up',
        title: `Wait until ${m.name} has caught up`,
        destructive: false,
        operation: `poll ${m.name}'s status until it is started and within ${cluster.etcd.lagWarnEntries} raft entries of the leader (at most 180 s)`,
        params: { name: m.name, peerUrl: f.peerUrl },
      },
      {
        kind: 'promote',
        title: `Promote ${m.name} to voter`,
        destructive: false,
        operation: `cluster.memberPromote(<new ID of ${m.name}>), retried with backoff while it lags (at most 120 s)`,
        params: { name: m.name, peerUrl: f.peerUrl },
      },
    );
  });
  steps.push({
    kind: 'verify',
    title: 'Verify every member healthy',
    destructive: false,
    operation: `every member answers with one leader, ${cluster.members.length} voters, no learner; revision ≥ ${restoredRevision}`,
    params: { voters: cluster.members.length, minRevision: restoredRevision },
  });
  if (req.snapshot) {
    steps.push({
      kind: 'apiservers',
      title: 'Start kube-apiserver again',
      destructive: false,
      operation: apiserverOperation(cluster, apis, 'start'),
      params: { action: 'start', hosts: JSON.stringify(apis) },
    });
  }
  steps.push(kubeCheckStep(cluster));

  const why = req.snapshot
    ? `snapshot path: backup ${req.snapshot.id} (revision ${req.snapshot.revision}, taken ${req.snapshot.takenAt}) restored onto ${survivor.name}${req.from ? ' (named with --from)' : ''} with a new cluster token.`
    : `force-new-cluster path: ${survivor.name} is the most up-to-date survivor${req.from ? ' (named with --from)' : sRow ? ` (raft index ${sRow.status!.raftIndex}, applied ${sRow.status!.raftAppliedIndex})` : ` (stopped; its database is at revision ${survivorRevision})`}.`;
  const loss = lost > 0 ? `Data loss: the last revision seen was ${lastSeen}; the restored state is at revision ${restoredRevision}: ${lost} revision${lost === 1 ? '' : 's'} lost.` : `Data loss: none seen (restored revision ${restoredRevision}, last seen ${lastSeen}).`;
  const rationale = `${why} ${loss} Pause whatever manages the control plane's machines (Cluster API, autoscaling groups) until this ends.${unconfirmed.length ? ` Unreachable hosts (${unconfirmed.join(', ')}) must be confirmed down by whoever approves the fence.` : ''}`;

  const run = newRun(
    inventory,
    { runId: req.runId, runbook: 'restore-quorum', title: `Restore quorum of ${cluster.name}`, rationale, cluster: cluster.name, target: survivor.name, steps, plannedState: state, requestedBy: req.requestedBy, channelId: req.channelId },
    now,
  );
  return { ok: true, run };
}

function pick(s: ReturnType<typeof hostPlaces>) {
  return {
    name: s.name,
    config: s.config,
    configAside: s.configAside,
    asideDir: s.asideDir,
    dataDir: s.dataDir,
    dataAside: s.dataAside,
    clientHost: s.clientHost,
    peerUrl: s.peerUrl,
    listen: JSON.stringify(s.listen),
  };
}
