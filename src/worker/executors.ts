import type { BackupStore } from '../backup/store.js';
import { nodesOf, type ClusterConfig, type Inventory } from '../config/schema.js';
import type { EtcdPool } from '../etcd/pool.js';
import type { Logger } from '../log.js';
import type { StepExecutor, StillOwns } from '../runbook/engine.js';
import type { RunStore } from '../runbook/store.js';
import type { Run, StepKind } from '../runbook/types.js';
import type { SshTarget } from '../ssh/exec.js';
import { executeStep, STEP_KINDS, undoOnEnd, type StepContext } from '../steps/index.js';
import { sshTargetOf } from './ssh-target.js';
import { hostContextOf } from './steps/host-steps.js';
import { runCsrThread, type RunCsrDeps } from './run-csr-thread.js';

/**
 * Every step kind (src/steps), wired to the adapters it needs. `csr`: where a
 * step shows CSRs in its run's thread (without it, it offers `/etcd csr`).
 */
export function stepExecutors(inventory: Inventory, pool: EtcdPool, store: BackupStore, log: Logger, csr?: RunCsrDeps): Record<StepKind, StepExecutor> {
  const contextOf = stepContexts(inventory, pool, store, log, csr);
  const execute: StepExecutor = (run, step, index, stop, leaseLost, stillOwns) => executeStep(contextOf(run, index, stop, leaseLost, stillOwns), step);
  return Object.fromEntries(STEP_KINDS.map((k) => [k, execute])) as Record<StepKind, StepExecutor>;
}

/**
 * For a run that ended before its last step: what its started steps put back (StepDefinition.undo), as thread lines.
 * With `runs`, each write of a put-back first asks that the run has ended and still holds its cluster's lock: a
 * put-back sent late (its worker paused past the sweeper's own put-back and the lock's release) must not undo
 * what a new run on the cluster has done since.
 */
export function stepUndo(inventory: Inventory, pool: EtcdPool, store: BackupStore, log: Logger, runs?: Pick<RunStore, 'putBackOwner'>): (run: Run) => Promise<string[]> {
  const contextOf = stepContexts(inventory, pool, store, log);
  return (run) => undoOnEnd((index) => contextOf(run, index, undefined, undefined, runs && (() => runs.putBackOwner(run.runId, run.cluster))), run);
}

function stepContexts(inventory: Inventory, pool: EtcdPool, store: BackupStore, log: Logger, csr?: RunCsrDeps) {
  const clusterOf = (run: Run): ClusterConfig => {
    const c = inventory.clusters.find((x) => x.name === run.cluster);
    if (!c) throw new Error(`cluster ${run.cluster} is not in this worker's inventory`);
    return c;
  };
  const contextOf = (run: Run, index: number, stop?: AbortSignal, leaseLost?: AbortSignal, stillOwns?: StillOwns): StepContext => {
    const cluster = clusterOf(run);
    const rlog = log.child({ run: run.runId });
    const host = hostContextOf(cluster, (name: string): SshTarget => {
      // A master, or a node whose kubelet a run renews.
      const m = nodesOf(cluster).find((x) => x.name === name);
      if (!m) throw new Error(`member or node ${name} is not in the inventory`);
      return sshTargetOf(m);
    });
    return {
      run,
      index,
      cluster,
      platform: host.platform,
      pool,
      etcd: { cluster, pool, store, keep: inventory.backups.keep, log: rlog },
      host,
      quorum: { ...host, pool, store },
      kube: { cluster, log: rlog, csrThread: csr && ((k) => runCsrThread(csr, run, cluster, k, rlog)) },
      workload: { cluster, pool, log: rlog, stillOwns },
      stop,
      leaseLost,
      stillOwns,
    };
  };
  return contextOf;
}
