import type { Queue } from 'bullmq';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';
import { doneAndNotDone, putBackAndFree, sayLeftBehind, type EngineDeps, type RunNotifier } from '../runbook/engine.js';
import type { RunStore } from '../runbook/store.js';
import { TERMINAL, type Run } from '../runbook/types.js';

export interface SweeperDeps {
  store: RunStore;
  queue: Queue<JobEnvelope>;
  notify: RunNotifier;
  enqueueStep(runId: string, index: number, tag?: string): Promise<void>;
  log: Logger;
  /** This worker's ID: the sweeper's lease names it, so that one worker at a time sweeps. */
  owner: string;
  everyMs: number;
  now: () => Date;
  /** What a run it ends left half-done on the hosts (as the engine says it, src/steps `leftBehind`). */
  leftBehind?: EngineDeps['leftBehind'];
  /**
   * What a run it ends (or finds ended, its cluster still locked) puts back before its cluster is
   * free (a deleted PDB, a StatefulSet on state existing): the engine's own, so that every end of
   * a run puts back the same way. Required: a sweeper without it would free a cluster silently half-changed.
   */
  undoOnEnd: NonNullable<EngineDeps['undoOnEnd']>;
}

export interface Sweeper {
  /** One pass now (if this worker holds the sweeper lease); returns what it did, for logs and tests. */
  sweep(): Promise<string[]>;
  stop(): Promise<void>;
}

// BullMQ's states of a job that will still run.
const LIVE = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/**
 * Finds what a crash or a lost job left behind and mends it, on the record:
 * - a run whose current step has no live job (not waiting for a click, no step
 *   job waiting, active or delayed, run lease free) is queued again, or, when
 *   its step's job failed for good, ended failed with the reason in its thread;
 * - a cluster lock whose run is missing or has ended is released (an ended run's
 *   worker died before it freed it: what the run changed is put back first).
 * Runs in every worker; a short lease lets one sweep at a time.
 */
export function startSweeper(deps: SweeperDeps): Sweeper {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();

  const sweep = async (): Promise<string[]> => {
    if (!(await deps.store.leaseNamed('sweeper', deps.owner, deps.everyMs * 3))) return [];
    const did: string[] = [];
    const ids = await deps.store.activeRunIds();
    if (ids.length) {
      const live = new Set((await deps.queue.getJobs([...LIVE])).filter(Boolean).map((j) => stepOf(j.data)?.runId));
      for (const id of ids) {
        if (stopped) break;
        const run = await deps.store.get(id);
        if (!run || TERMINAL.includes(run.status)) {
          await deps.store.forgetActive(id);
          continue;
        }
        if (live.has(id) || !needsWorker(run, deps.now(), deps.everyMs)) continue;
        if (await deps.store.leaseHolder(id)) continue;
        did.push(await mend(run));
      }
    }
    for (const { cluster, runId } of await deps.store.locks()) {
      const run = await deps.store.get(runId);
      if (run && !TERMINAL.includes(run.status)) continue;
      // A worker holding the run's lease is ending it now (putting back, then freeing): left to it.
      if (run && (await deps.store.leaseHolder(runId))) continue;
      if (!(await (run ? putBackAndFree(run, deps) : deps.store.unlockCluster(cluster, runId)))) continue;
      const why = run ? `its run \`${runId}\` has ended (${run.status})` : `its run \`${runId}\` does not exist`;
      deps.log.warn({ cluster, run: runId }, 'sweeper released an orphaned cluster lock');
      if (run) await deps.notify.record(run, `The lock of ${cluster} was still held although ${why}: released.`);
      did.push(`released the lock of ${cluster} (${why})`);
    }
    for (const d of did) deps.log.info({ sweep: d }, 'sweeper');
    return did;
  };

  /** A run nobody works on: its step queued again, or the run failed if that step's job gave up. */
  const mend = async (run: Run): Promise<string> => {
    const i = run.current;
    const gaveUp = (await deps.queue.getJobs(['failed'])).find((j) => {
      const s = j && stepOf(j.data);
      // A job that ran out of retries only waiting for the lease did not fail the step: queue it again.
      return s && s.runId === run.runId && s.index === i && !/is busy/.test(j.failedReason ?? '');
    });
    if (gaveUp && !run.stopRequest) {
      const reason = `step ${i + 1} (${run.steps[i]!.title}) could not be run: its job failed ${gaveUp.attemptsMade} time(s), last with: ${gaveUp.failedReason ?? 'no reason given'}`;
      const res = await deps.store.apply(run.runId, { kind: 'abandon', reason }, deps.now(), { free: true });
      if (!res.changed) return `left ${run.runId} alone: ${res.refused ?? 'it changed meanwhile'}`;
      const freed = await putBackAndFree(res.run, deps);
      await deps.notify.thread(res.run, `:x: Run \`${run.runId}\` stopped: ${reason}. Nothing more is done; ${freed ? `${res.run.cluster} is free again` : `${res.run.cluster} stays locked until what it changed is put back`}. ${doneAndNotDone(res.run)}`);
      await sayLeftBehind(res.run, deps);
      await deps.notify.planChanged(res.run);
      return `failed ${run.runId}: ${reason}`;
    }
    await deps.enqueueStep(run.runId, i, `sweep-${deps.now().getTime()}`);
    await deps.notify.record(run, `Step ${i + 1} of run \`${run.runId}\` had no worker on it (its job was lost); queued it again.`);
    return `re-queued step ${i + 1} of ${run.runId}`;
  };

  const timer = setInterval(() => {
    running = running.then(sweep).catch((err: Error) => deps.log.warn({ err: err.message }, 'sweep failed; next one retries'));
  }, deps.everyMs);
  timer.unref();
  return {
    sweep: () => (running = running.then(sweep)) as Promise<string[]>,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running.catch(() => undefined);
    },
  };
}

function stepOf(env: JobEnvelope | undefined): { runId: string; index: number } | null {
  return env?.request.name === 'step' ? env.request.data : null;
}

/**
 * Whether the run should have a job working on it now. A run waiting for a click
 * needs none, and a run younger than one sweep is left to the worker starting it.
 */
function needsWorker(run: Run, now: Date, graceMs: number): boolean {
  if (now.getTime() - Date.parse(run.createdAt) < graceMs) return false;
  if (run.current >= run.steps.length) return false;
  const x = run.records[run.current]!;
  return !!run.stopRequest || x.status !== 'awaiting_approval';
}
