import type { BackupStore } from '../backup/store.js';
import type { ClusterConfig, Inventory } from '../config/schema.js';
import type { EtcdPool } from '../etcd/pool.js';
import type { Logger } from '../log.js';
import type { StepExecutor } from '../runbook/engine.js';
import type { Run, StepKind } from '../runbook/types.js';
import type { SshTarget } from '../ssh/exec.js';
import { viewCluster } from './cluster-view.js';
import { sshTargetOf } from './ssh-target.js';
import { memberAddLearner, memberRemove, promote, snapshot, verify, waitCaughtUp, type EtcdStepContext } from './steps/etcd-steps.js';
import { hostContextOf, stopAndMoveAside, writeManifest, type HostStepContext } from './steps/host-steps.js';
import { kubeCheck } from './steps/kube-steps.js';
import { runCsrThread, type RunCsrDeps } from './run-csr-thread.js';
import { apiservers, fence, forceNewCluster, restoreSnapshot, verifyBackup, type QuorumStepContext } from './steps/quorum-steps.js';

/** Every step kind, wired to the adapters it needs. `csr`: where a step shows CSRs in its run's thread (without it, it offers `/etcd csr`). */
export function stepExecutors(inventory: Inventory, pool: EtcdPool, store: BackupStore, log: Logger, csr?: RunCsrDeps): Record<StepKind, StepExecutor> {
  const clusterOf = (run: Run): ClusterConfig => {
    const c = inventory.clusters.find((x) => x.name === run.cluster);
    if (!c) throw new Error(`cluster ${run.cluster} is not in this worker's inventory`);
    return c;
  };
  const etcd = (run: Run): EtcdStepContext => ({ cluster: clusterOf(run), pool, store, keep: inventory.backups.keep, log: log.child({ run: run.runId }) });
  const host = (run: Run): HostStepContext => {
    const cluster = clusterOf(run);
    return hostContextOf(cluster, (name: string): SshTarget => {
      const m = cluster.members.find((x) => x.name === name);
      if (!m) throw new Error(`member ${name} is not in the inventory`);
      return sshTargetOf(m);
    });
  };
  const quorum = (run: Run): QuorumStepContext => ({ ...host(run), pool, store });

  return {
    snapshot: (run, step, _i, signal) => snapshot(etcd(run), step, run, signal),
    'member-remove': (run, step) => memberRemove(etcd(run), step),
    // Host steps stop their SSH command once this worker lost the run lease (another may run the step now).
    'stop-and-move-aside': (run, step, _i, _stop, leaseLost) => stopAndMoveAside(host(run), step, leaseLost),
    'member-add-learner': (run, step) => memberAddLearner(etcd(run), step),
    'write-manifest': async (run, step, _i, _stop, leaseLost) => {
      const view = await viewCluster(clusterOf(run), pool);
      // The exact --initial-cluster `member add` prints: every member by name, the new one by the name it will take.
      const peerUrl = String(step.params.peerUrl);
      const initial = view.report.members
        .map((m) => `${m.started ? m.name : m.peerURLs.includes(peerUrl) ? String(step.params.name) : '(unstarted)'}=${m.peerURLs[0]}`)
        .sort()
        .join(',');
      return writeManifest(host(run), step, initial, leaseLost);
    },
    'wait-caught-up': (run, step, _i, signal) => waitCaughtUp(etcd(run), step, signal),
    promote: (run, step) => promote(etcd(run), step),
    verify: (run, step) => verify(etcd(run), step),
    fence: (run, step, _i, _stop, leaseLost) => fence(quorum(run), step, leaseLost),
    'force-new-cluster': (run, step, _i, _stop, leaseLost) => forceNewCluster(quorum(run), step, leaseLost),
    'verify-backup': (run, step) => verifyBackup(quorum(run), step),
    'restore-snapshot': (run, step, _i, _stop, leaseLost) => restoreSnapshot(quorum(run), step, leaseLost),
    apiservers: (run, step, _i, _stop, leaseLost) => apiservers(quorum(run), step, leaseLost),
    'kube-check': (run, step, _i, signal) => {
      const cluster = clusterOf(run);
      const rlog = log.child({ run: run.runId });
      return kubeCheck({ cluster, log: rlog, csrThread: csr && ((k) => runCsrThread(csr, run, cluster, k, rlog)) }, step, signal);
    },
  };
}
