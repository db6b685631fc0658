import type { ClusterConfig, Inventory } from '../config/schema.js';
import { memberPlace, platformOf } from '../platform/index.js';
import type { StatusReport } from '../status/assess.js';
import { afterRemoval, findMember, hostOfUrl, listenAddrsOf, peerHostMismatch } from '../status/members.js';
import { backupId } from '../backup/store.js';
import { kubeNodeStep } from './kube-check-plan.js';
import { newRun } from './new-run.js';
import type { ObservedState, Run, StepSpec } from './types.js';

export interface ReplaceRequest {
  runId: string;
  target: string; // name, hex ID or host, as typed
  force: boolean;
  requestedBy: string;
  channelId: string;
}

export type PlanOutcome = { ok: true; run: Run } | { ok: false; reason: string };


/**
 * The "replace a failed member" procedure of the vendor runbooks as data: pure,
 * from the live report. Refuses, with the reason, whatever the safety rules of
 * etcd forbid.
 */
export function planReplace(
  inventory: Inventory,
  cluster: ClusterConfig,
  report: StatusReport,
  state: ObservedState,
  req: ReplaceRequest,
  now: Date,
): PlanOutcome {
  if (report.verdict === 'QUORUM_LOST' || report.verdict === 'UNREACHABLE') {
    return { ok: false, reason: `the cluster has no quorum (${report.healthyVoters} of ${report.voters} voters up). A replace needs a working quorum; use \`/etcd restore-quorum ${cluster.name}\` first.` };
  }
  const ref = req.target.toLowerCase();
  const live = findMember(report.members, ref);
  const conf = cluster.members.find((m) => m.name === (live?.name ?? ref) || m.host === ref);
  const known = report.members.map((m) => `${m.name} (${m.idHex})`).join(', ');
  if (!live && !conf) return { ok: false, reason: `no member "${req.target}" in ${cluster.name}. Members: ${known}. Name one by name, hex ID or host.` };
  if (!conf) {
    return { ok: false, reason: `${live!.name} (${live!.idHex}) is in the member list but not in the inventory, so the bot has no SSH access to its host. Add it to clusters[].members first.` };
  }

  // The bot stops etcd and moves the data dir on the inventory host: it must be the member's machine.
  const mismatch = live ? peerHostMismatch(live, conf.host) : null;
  if (mismatch) {
    return {
      ok: false,
      reason: `${mismatch} (SSH ${conf.ssh.user}@${conf.host}:${conf.ssh.port}): they may not be the same machine, so the bot would stop etcd and move a data dir on the wrong one. Correct clusters[].members[].host in the inventory (or the member's peer URL), then ask again. Nothing was changed.`,
    };
  }

  const peerUrl = live?.peerURLs[0] ?? `https://${conf.host}:2380`;
  const voters = report.members.filter((m) => !m.learner);
  const healthyOthers = voters.filter((m) => m !== live && m.reachable && m.status && m.status.leader !== '0');
  const removal = live ? afterRemoval(report.members, live) : null;
  if (live && removal && !removal.ok) {
    if (removal.voters <= 2) {
      return { ok: false, reason: `${cluster.name} has ${removal.voters} voting members; removing one from a cluster of two or fewer loses it. Add a member first.` };
    }
    return {
      ok: false,
      reason: `removing ${live.name} would leave ${removal.healthyLeft} healthy voters of ${removal.voters - 1}, below the quorum of ${removal.quorumAfter}. Bring another member back first, or use \`/etcd restore-quorum\` if the majority is gone.`,
    };
  }
  if (live?.reachable && live.started && !req.force) {
    return {
      ok: false,
      reason: `${live.name} (${live.idHex}) is healthy: it answers, raft index ${live.status?.raftIndex}. Replacing a healthy member is rarely right; if you mean it, type \`/etcd replace ${live.name} ${cluster.name} --force\` (the plan will say it was forced).`,
    };
  }
  const source = healthyOthers.find((m) => m.isLeader) ?? healthyOthers[0];
  if (!source) return { ok: false, reason: 'no healthy member is left to take a snapshot from before the membership change.' };
  const sourceUrl = source.clientURLs.find((u) => cluster.etcd.endpoints.includes(u)) ?? source.clientURLs[0]!;

  const platform = platformOf(cluster);
  const paths = memberPlace(cluster, conf, req.runId);
  const { config, configAside, asideDir, dataAside } = paths;
  const ssh = `${conf.ssh.user}@${conf.host}:${conf.ssh.port}`;
  const others = report.members.filter((m) => m !== live && m.started);
  const initialCluster = [...others.map((m) => `${m.name}=${m.peerURLs[0]}`), `${conf.name}=${peerUrl}`].sort().join(',');
  const backup = backupId(now);
  const listen = listenAddrsOf(cluster.etcd.endpoints, conf, report.members);
  const steps: StepSpec[] = [
    {
      kind: 'snapshot',
      title: 'Take and verify a snapshot',
      destructive: false,
      operation: `maintenance.snapshot() from ${source.name} (${sourceUrl}) → backup ${backup} in ${inventory.backups.dir}/${cluster.name} (snapshot_${backup}.db and static_kuberesources_${backup}.tar.gz); verified by its sha256 trailer and etcdctl snapshot status`,
      params: { from: source.name, backupId: backup },
    },
  ];
  if (live) {
    steps.push({
      kind: 'member-remove',
      title: `Remove ${conf.name} from the member list`,
      destructive: true,
      operation: `cluster.memberRemove(${live.idHex}), as etcdctl member remove ${live.idHex}`,
      params: { idHex: live.idHex!, name: conf.name, peerUrl },
    });
  }
  steps.push(
    {
      kind: 'stop-and-move-aside',
      title: `Stop etcd on ${conf.name} and move its data dir aside`,
      destructive: true,
      host: conf.name,
      operation: `on ${ssh}: ${platform.stopText(paths)}; wait until etcd is gone (nothing on ${listen.join(', ')}, no etcd process on ${paths.dataDir}); mv ${paths.dataDir} ${dataAside}`,
      params: { config, configAside, asideDir, dataDir: paths.dataDir, dataAside, clientHost: hostOfUrl(live?.clientURLs[0] ?? `https://${conf.host}:2379`), listen: JSON.stringify(listen) },
    },
    {
      kind: 'member-add-learner',
      title: `Add ${conf.name} back as a learner`,
      destructive: false,
      operation: `cluster.memberAdd(peerURLs=[${peerUrl}], isLearner=true), as etcdctl member add ${conf.name} --peer-urls=${peerUrl} --learner; retried while etcd answers "unhealthy cluster"`,
      params: { name: conf.name, peerUrl },
    },
    {
      kind: 'write-manifest',
      title: `Start etcd on ${conf.name} with state "existing"`,
      destructive: false,
      host: conf.name,
      operation: `on ${ssh}: write ${config} from ${configAside} with --initial-cluster-state=existing --initial-cluster=${initialCluster}; ${platform.startText('start')} on an empty ${paths.dataDir}`,
      params: { config, configAside, asideDir, name: conf.name, peerUrl, initialCluster, dataDir: paths.dataDir },
    },
    {
      kind: 'wait-caught-up',
      title: `Wait until ${conf.name} has caught up`,
      destructive: false,
      operation: `poll ${conf.name}'s status until it is started and its raft index is within ${cluster.etcd.lagWarnEntries} entries of the leader's (at most 180 s)`,
      params: { name: conf.name, peerUrl },
    },
    {
      kind: 'promote',
      title: `Promote ${conf.name} to voter`,
      destructive: false,
      operation: `cluster.memberPromote(<new ID of ${conf.name}>), retried with backoff while it lags (at most 120 s)`,
      params: { name: conf.name, peerUrl },
    },
    {
      kind: 'verify',
      title: 'Verify every member healthy and the revision intact',
      destructive: false,
      operation: `every member answers with one leader, ${voters.length + (live?.learner ? 1 : live ? 0 : 1)} voters, no learner; revision ≥ ${state.revision}`,
      params: { voters: voters.length + (live?.learner ? 1 : live ? 0 : 1), minRevision: state.revision },
    },
  );
  // etcd is whole again; the master's Node may still wait for its certificates (a rebuilt machine).
  steps.push(kubeNodeStep(cluster, conf.name));
  if (req.force) steps[0]!.operation += ` (FORCED: ${conf.name} was healthy when planned)`;

  const run = newRun(
    inventory,
    { runId: req.runId, runbook: 'replace', title: `Replace ${conf.name} in ${cluster.name}`, cluster: cluster.name, target: conf.name, force: req.force, steps, plannedState: state, requestedBy: req.requestedBy, channelId: req.channelId },
    now,
  );
  return { ok: true, run };
}
