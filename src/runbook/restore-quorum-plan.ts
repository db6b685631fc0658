import { backupId, type BackupFacts } from '../backup/store.js';
import type { ClusterConfig, Inventory, MemberConfig } from '../config/schema.js';
import { hostRunbookRefusal, memberPlace, platformOf } from '../platform/index.js';
import type { MemberRow, StatusReport } from '../status/assess.js';
import { hostOfUrl, listenAddrsOf } from '../status/members.js';
import { flagValuesProblem } from './flag-values.js';
import { newRun } from './new-run.js';
import type { PlanOutcome } from './replace-plan.js';
import type { ObservedState, StepSpec } from './types.js';
import { apiserversStep } from '../steps/apiservers.js';
import { fenceStep } from '../steps/fence.js';
import { forceNewClusterStep } from '../steps/force-new-cluster.js';
import { kubeCheckStep } from '../steps/kube-check.js';
import { redeploySteps } from './restore-plan.js';
import { memberAddLearnerStep } from '../steps/member-add-learner.js';
import { promoteStep } from '../steps/promote.js';
import { restoreSnapshotStep } from '../steps/restore-snapshot.js';
import { snapshotStep } from '../steps/snapshot.js';
import { verifyBackupStep } from '../steps/verify-backup.js';
import { verifyStep } from '../steps/verify.js';
import { waitCaughtUpStep } from '../steps/wait-caught-up.js';
import { writeManifestStep } from '../steps/write-manifest.js';

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

/**
 * Who could restart the cluster alone, best first: the members that answer, by
 * raft index (ties by applied index), then the stopped members whose database
 * the host probe read offline, by revision. `/etcd status` has no host probe
 * (it does not SSH): it sees only the first list.
 */
export function survivorCandidates(cluster: ClusterConfig, report: StatusReport, hosts: HostView[] = []): { answering: MemberConfig[]; stoppedWithData: MemberConfig[] } {
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
  return { answering, stoppedWithData };
}

/**
 * The survivor the planner picks when none is named (`--from`) and no snapshot is
 * given, and why, in one line; null when there is none to pick.
 */
export function defaultSurvivor(cluster: ClusterConfig, report: StatusReport, hosts: HostView[] = []): { member: MemberConfig; why: string } | null {
  const { answering, stoppedWithData } = survivorCandidates(cluster, report, hosts);
  const status = (name: string) => report.members.find((m) => m.name === name && m.status)?.status;
  const first = answering[0];
  if (first) {
    const s = status(first.name)!;
    const others = answering.slice(1).map((m) => `${m.name} ${status(m.name)!.raftIndex}`);
    return {
      member: first,
      why: `it answers with the highest raft index (${s.raftIndex}${others.length ? ` against ${others.join(', ')}` : ', the only one answering'})`,
    };
  }
  const stopped = stoppedWithData[0];
  if (stopped) {
    const h = hosts.find((x) => x.name === stopped.name) as { offlineRevision: number };
    return { member: stopped, why: `no member answers; its stopped database has the highest revision (${h.offlineRevision}), read offline over SSH` };
  }
  return null;
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
  const hostless = hostRunbookRefusal(cluster, '/etcd restore-quorum');
  if (hostless) return { ok: false, reason: hostless };
  if (report.verdict === 'HEALTHY' || report.verdict === 'DEGRADED') {
    return {
      ok: false,
      reason: `quorum holds (${report.healthyVoters} of ${report.voters} voters up with a leader). For a failed member use \`/etcd replace <member> ${cluster.name}\`; restore-quorum is for a lost majority.`,
    };
  }
  const row = (name: string): MemberRow | undefined => report.members.find((m) => m.name === name && m.status);
  const hostOf = (name: string) => hosts.find((h) => h.name === name);
  const { answering, stoppedWithData } = survivorCandidates(cluster, report, hosts);

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

  const s = hostPlaces(cluster, survivor, req.runId, report.members);
  const sUrl = cluster.etcd.endpoints.find((e) => e.includes(`//${survivor!.host}:`)) ?? s.clientUrl;
  const steps: StepSpec[] = [];
  const token = `${cluster.name}-${req.runId}`;

  if (req.snapshot) steps.push(verifyBackupStep.spec({ backup: req.snapshot }));
  else if (sRow) steps.push(snapshotStep.spec({ runbook: 'restore-quorum', from: survivor.name, fromUrl: sUrl, backupId: backupId(now), store: `${inventory.backups.dir}/${cluster.name}` }));

  // As /etcd restore does: nothing may write to (or serve from) etcd while a backup replaces its data.
  const apis = req.snapshot ? apiserverPlaces(cluster, cluster.members.filter((m) => !unconfirmed.includes(m.name)), req.runId) : [];
  if (req.snapshot) steps.push(apiserversStep.spec({ cluster, action: 'stop', places: apis, reachableOnly: true }));

  const fenced = others.map((m) => hostPlaces(cluster, m, req.runId, report.members));
  steps.push(fenceStep.spec({ runbook: 'restore-quorum', cluster, places: fenced, unconfirmed: unconfirmed.map((n) => ({ name: n, error: (hostOf(n) as { error?: string } | undefined)?.error })) }));

  if (req.snapshot) steps.push(restoreSnapshotStep.spec({ runbook: 'restore-quorum', cluster, backup: req.snapshot, place: s, token, endpoint: sUrl }));
  else steps.push(forceNewClusterStep.spec({ cluster, place: s, endpoint: sUrl }));

  // Grow back one member at a time: learner, start with state existing, catch up, promote.
  const members = [survivor, ...others];
  const unwritable = flagValuesProblem(cluster, {
    'initial-cluster': members.map((x) => `${x.name}=${hostPlaces(cluster, x, req.runId, report.members).peerUrl}`).join(','),
    'initial-cluster-token': token,
  });
  if (unwritable) return { ok: false, reason: unwritable };
  others.forEach((m, i) => {
    const f = hostPlaces(cluster, m, req.runId, report.members);
    const initialCluster = members
      .slice(0, i + 2)
      .map((x) => `${x.name}=${hostPlaces(cluster, x, req.runId, report.members).peerUrl}`)
      .sort()
      .join(',');
    steps.push(
      memberAddLearnerStep.spec({ name: m.name, peerUrl: f.peerUrl, etcdctl: false }),
      writeManifestStep.spec({ runbook: 'restore-quorum', cluster, member: m, place: f, peerUrl: f.peerUrl, initialCluster, template: { member: survivor!, place: s } }),
      waitCaughtUpStep.spec({ runbook: 'restore-quorum', cluster, name: m.name, peerUrl: f.peerUrl }),
      promoteStep.spec({ name: m.name, peerUrl: f.peerUrl }),
    );
  });
  steps.push(verifyStep.spec({ runbook: 'restore-quorum', voters: cluster.members.length, minRevision: restoredRevision }));
  if (req.snapshot) steps.push(apiserversStep.spec({ cluster, action: 'start', places: apis }));
  steps.push(kubeCheckStep.spec({ cluster }), ...redeploySteps(cluster, req.runId));

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
