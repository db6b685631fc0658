import type { ClusterConfig, Inventory, MemberConfig } from '../config/schema.js';
import { memberPlace, otherCaOn, otherCasOf, platformOf } from '../platform/index.js';
import { workloadReplaceSteps } from './replace-workload-steps.js';
import type { MemberRow, StatusReport } from '../status/assess.js';
import { afterRemoval, findMember, hostOfUrl, listenAddrsOf, peerHostMismatch } from '../status/members.js';
import { backupId } from '../backup/store.js';
import { flagValuesProblem } from './flag-values.js';
import { newRun } from './new-run.js';
import { rebuiltChoice, type ReplaceHosts } from './rebuilt-host.js';
import type { ObservedState, Run, StepSpec } from './types.js';
import { issueCertsStep } from '../steps/issue-certs.js';
import { kubeCheckStep } from '../steps/kube-check.js';
import { memberAddLearnerStep } from '../steps/member-add-learner.js';
import { memberRemoveStep } from '../steps/member-remove.js';
import { promoteStep } from '../steps/promote.js';
import { snapshotStep } from '../steps/snapshot.js';
import { stopAndMoveAsideStep } from '../steps/stop-and-move-aside.js';
import { verifyStep } from '../steps/verify.js';
import { waitCaughtUpStep } from '../steps/wait-caught-up.js';
import { writeManifestStep } from '../steps/write-manifest.js';

export interface ReplaceRequest {
  runId: string;
  target: string; // name, hex ID or host, as typed
  force: boolean;
  requestedBy: string;
  channelId: string;
}

export type PlanOutcome = { ok: true; run: Run } | { ok: false; reason: string };


/**
 * Why a member that answers has failed all the same, or null: it raises the
 * CORRUPT alarm (its data no longer matches its peers'), or its raft index lags
 * the highest by more than the cluster's limit.
 */
export function answeringFailure(cluster: ClusterConfig, report: StatusReport, m: MemberRow): string | null {
  if (!m.status) return null;
  if (m.alarms.includes('CORRUPT')) return 'it raises the CORRUPT alarm';
  const maxIndex = Math.max(0, ...report.members.map((x) => x.status?.raftIndex ?? 0));
  const lag = maxIndex - m.status.raftIndex;
  return lag > cluster.etcd.lagWarnEntries ? `it lags by ${lag} raft entries (the limit is ${cluster.etcd.lagWarnEntries})` : null;
}

/**
 * The "replace a failed member" procedure of the vendor runbooks as data: pure,
 * from the live report. Refuses, with the reason, whatever the safety rules of
 * etcd forbid. `hosts`, a look at the member's host and its healthy peers'
 * (src/worker/replace-probe.ts): a host found rebuilt (no config, or no
 * certificates the cluster trusts for it) gets them from a peer and the CA.
 */
export function planReplace(
  inventory: Inventory,
  cluster: ClusterConfig,
  report: StatusReport,
  state: ObservedState,
  req: ReplaceRequest,
  now: Date,
  hosts?: ReplaceHosts,
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
      reason: `${mismatch} (SSH ${conf.ssh?.user}@${conf.host}:${conf.ssh?.port}): they may not be the same machine, so the bot would stop etcd and move a data dir on the wrong one. Correct clusters[].members[].host in the inventory (or the member's peer URL), then ask again. Nothing was changed.`,
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
  // A member that answers but raises CORRUPT or lags past the limit has failed all the same (what `/etcd status`
  // offers the Replace button for). Asked again at every plan: once it caught up or the alarm is gone, it is healthy.
  const failedWhy = live?.reachable ? answeringFailure(cluster, report, live) : null;
  if (live?.reachable && live.started && !req.force && !failedWhy) {
    return {
      ok: false,
      reason: `${live.name} (${live.idHex}) is healthy: it answers, raft index ${live.status?.raftIndex}. Replacing a healthy member is rarely right; if you mean it, type \`/etcd replace ${live.name} ${cluster.name} --force\` (the plan will say it was forced).`,
    };
  }
  const source = healthyOthers.find((m) => m.isLeader) ?? healthyOthers[0];
  if (!source) return { ok: false, reason: 'no healthy member is left to take a snapshot from before the membership change.' };
  const sourceUrl = source.clientURLs.find((u) => cluster.etcd.endpoints.includes(u)) ?? source.clientURLs[0]!;

  // etcd as a Kubernetes workload (a StatefulSet in an admin cluster): the same safety rules, its own steps.
  const workload = platformOf(cluster).workload?.(conf);
  if (workload) {
    const snapshot = snapshotStep.spec({ runbook: 'replace', from: source.name, fromUrl: sourceUrl, backupId: backupId(now), store: `${inventory.backups.dir}/${cluster.name}`, forced: req.force ? conf.name : undefined });
    const voterCount = voters.length + (live?.learner ? 1 : live ? 0 : 1);
    const steps = workloadReplaceSteps({ cluster, place: workload, runId: req.runId, saveDir: `${inventory.backups.dir}/${cluster.name}`, snapshot, live: live?.idHex ? { idHex: live.idHex } : undefined, peerUrl, voters: voterCount, minRevision: state.revision });
    const run = newRun(
      inventory,
      { runId: req.runId, runbook: 'replace', title: `Replace ${conf.name} in ${cluster.name}`, rationale: failedWhy ? `${conf.name} answers, but ${failedWhy}: it is replaced as a failed member.` : undefined, cluster: cluster.name, target: conf.name, force: req.force, steps, plannedState: state, requestedBy: req.requestedBy, channelId: req.channelId },
      now,
    );
    return { ok: true, run };
  }

  const paths = memberPlace(cluster, conf, req.runId);
  const others = report.members.filter((m) => m !== live && m.started);
  const initialCluster = [...others.map((m) => `${m.name}=${m.peerURLs[0]}`), `${conf.name}=${peerUrl}`].sort().join(',');
  const listen = listenAddrsOf(cluster.etcd.endpoints, conf, report.members);
  const name = conf.name;
  const unwritable = flagValuesProblem(cluster, { name, 'initial-cluster': initialCluster });
  if (unwritable) return { ok: false, reason: unwritable };

  // The snapshot's source first: the master that is surely up is the first asked to sign and to lend its config.
  const rebuilt = rebuiltChoice(cluster, conf, hosts, [source, ...healthyOthers.filter((m) => m !== source)].map((m) => m.name));
  if (!rebuilt.ok) return rebuilt;
  const { template, certs } = rebuilt.choice;
  const rationale = [failedWhy && `${conf.name} answers, but ${failedWhy}: it is replaced as a failed member.`, rebuilt.choice.rationale].filter(Boolean).join(' ') || undefined;
  const platform = platformOf(cluster);
  // Where each master keeps the other CAs the certificates name (the metric signer's), in its own pki dir.
  const othersOn = (m: MemberConfig) => (certs ? otherCasOf(certs.certs).map((o) => otherCaOn(o, paths.pkiDir, platform.paths(m).pkiDir)) : []);
  const issue =
    certs &&
    issueCertsStep.spec({
      cluster,
      member: conf,
      signer: certs.signer,
      runId: req.runId,
      asideDir: paths.asideDir,
      caCert: platform.pki(conf).caCert,
      signerCa: { cert: platform.pki(certs.signer).caCert, key: platform.pki(certs.signer).caKey, others: othersOn(certs.signer) },
      fallbacks: certs.fallbacks.map((m) => ({ member: m, cert: platform.pki(m).caCert, key: platform.pki(m).caKey, others: othersOn(m) })),
      certs: certs.certs,
      why: certs.why,
      caSha256: certs.caSha256,
      otherCaSha256: certs.otherCaSha256,
    });
  const steps: StepSpec[] = [
    snapshotStep.spec({ runbook: 'replace', from: source.name, fromUrl: sourceUrl, backupId: backupId(now), store: `${inventory.backups.dir}/${cluster.name}`, forced: req.force ? name : undefined }),
  ];
  // A host without a config cannot start the old member on new certificates: they are issued before the membership
  // changes, so a signing that fails leaves the cluster whole. Where a config is left, only once etcd is stopped there.
  if (issue && template) steps.push(issue);
  if (live) steps.push(memberRemoveStep.spec({ idHex: live.idHex!, name, peerUrl }));
  steps.push(stopAndMoveAsideStep.spec({ cluster, member: name, place: paths, clientHost: hostOfUrl(live?.clientURLs[0] ?? `https://${conf.host}:2379`), listen }));
  if (issue && !template) steps.push(issue);
  const templatePaths = template && platform.paths(template);
  steps.push(
    memberAddLearnerStep.spec({ name, peerUrl, etcdctl: true }),
    template && templatePaths
      ? writeManifestStep.spec({ runbook: 'replace', rebuilt: true, cluster, member: conf, place: paths, peerUrl, initialCluster, template: { member: template, place: templatePaths } })
      : writeManifestStep.spec({ runbook: 'replace', cluster, member: conf, place: paths, peerUrl, initialCluster }),
    waitCaughtUpStep.spec({ runbook: 'replace', cluster, name, peerUrl }),
    promoteStep.spec({ name, peerUrl }),
    verifyStep.spec({ runbook: 'replace', voters: voters.length + (live?.learner ? 1 : live ? 0 : 1), minRevision: state.revision }),
    // etcd is whole again; the master's Node may still wait for its certificates (a rebuilt machine).
    kubeCheckStep.spec({ cluster, node: name }),
  );

  const run = newRun(
    inventory,
    { runId: req.runId, runbook: 'replace', title: `Replace ${conf.name} in ${cluster.name}`, rationale, cluster: cluster.name, target: conf.name, force: req.force, steps, plannedState: state, requestedBy: req.requestedBy, channelId: req.channelId },
    now,
  );
  return { ok: true, run };
}
