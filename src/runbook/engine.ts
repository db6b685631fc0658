import { randomBytes } from 'node:crypto';
import { approvalProblem } from '../approvals/sign.js';
import type { Logger } from '../log.js';
import { describeChange, membershipFingerprint } from './hash.js';
import type { LeaseGuard, RunLease, RunStore } from './store.js';
import { faultNamesStep, killAfterRecordFault } from './fault.js';
import { killAtFault } from '../fault.js';
import { TERMINAL, type CommandOffer, type ObservedState, type Run, type StepKind, type StepSpec } from './types.js';

export interface StepResult {
  /** One line for the plan message and the thread. */
  summary: string;
  /** An excerpt of what the operation printed, for the thread. */
  output?: string;
  /** The world already looked as this step would leave it: nothing was done. */
  skipped?: boolean;
  /** Done, but not all is well (etcd recovered, Kubernetes not yet): the run's end says this, not only "every step done". */
  caveat?: string;
  /** A command to offer next as a button under the step's line in the thread (e.g. `/etcd csr <cluster>`). */
  offer?: CommandOffer;
}

/** `signal` fires when the run gets a stop request: a long step (snapshot, wait) stops early. */
export type StepExecutor = (run: Run, step: StepSpec, index: number, signal?: AbortSignal) => Promise<StepResult>;

/** How the engine tells people what happens; the worker backs it with Slack. */
export interface RunNotifier {
  /** Redraws the plan message in place (posts it the first time). */
  planChanged(run: Run): Promise<void>;
  /** A line in the plan message's thread (and on the incident timeline), with a command offered as a button when given. */
  thread(run: Run, text: string, offer?: CommandOffer): Promise<void>;
  /** A timeline entry only, for what would crowd the thread (a step starting). */
  record(run: Run, text: string): Promise<void>;
}

export interface EngineDeps {
  store: RunStore;
  executors: Record<StepKind, StepExecutor>;
  /** The live cluster state, asked fresh: gates are bound to it and re-checked against it. */
  observe(cluster: string): Promise<ObservedState>;
  notify: RunNotifier;
  /** Puts the job that runs step `index` on the queue; `tag` makes its job ID unique where needed. */
  enqueueStep(runId: string, index: number, tag?: string): Promise<void>;
  approvalTtlMs: number;
  /** The HMAC key (ETCD_MEDIC_HMAC_KEY) that approvals are signed with when the click is accepted. */
  hmacKey: string;
  now: () => Date;
  log: Logger;
  /** Fault injection for tests: the step (`kind` or `kind#n`) after whose action this process is killed. */
  killAfter?: string;
  /**
   * Asked right before an approved destructive step acts: why the hosts the
   * rest of the run needs are not ready (null: they are). A reason stops the
   * step before it does anything; its gate opens again.
   */
  beforeDestructive?(run: Run, index: number): Promise<string | null>;
  /** Watches the run for a stop request while a step executes; its signal is passed to the executor. */
  watchStop?: (runId: string) => { signal: AbortSignal; stop(): void };
}

/**
 * Moves a run forward by one step. Called for every step job; safe to call
 * twice for the same step, after a crash, or out of order: it reads the run,
 * decides from its stored state, and each executor looks at the world before
 * it acts. Every change goes through `transition`; with a `lease` (the worker
 * always passes one) each write also needs the run lease to still be this
 * attempt's, so a worker that lost it records nothing and unlocks nothing.
 */
export async function processStep(runId: string, index: number, deps: EngineDeps, lease?: RunLease): Promise<void> {
  const { store, notify } = deps;
  const guard: LeaseGuard | undefined = lease ? { owner: lease.token } : undefined;
  const token = lease?.token ?? `local/${randomBytes(4).toString('hex')}`;
  const run = await store.get(runId);
  if (!run) return;
  if (TERMINAL.includes(run.status)) {
    // Under the run's lease, an ended run that still holds its cluster lost its worker between
    // saving the end and saying so: free the cluster, say where it ended, redraw the message.
    if ((await store.lockHolder(run.cluster)) !== run.runId) return;
    await store.unlockCluster(run.cluster, run.runId);
    await notify.thread(run, `:information_source: Run \`${run.runId}\` ended ${run.status.toUpperCase()} (${run.ended?.reason ?? 'no reason saved'}); the worker stopped before it said so. ${doneAndNotDone(run)}`);
    return notify.planChanged(run);
  }

  if (run.stopRequest) return finish(run, deps, guard);
  if (run.current !== index) {
    // A stale or duplicate job. If the run moved on but its next job was lost
    // (a crash between saving and enqueueing), put that job back.
    if (run.current > index && run.current < run.steps.length) await deps.enqueueStep(runId, run.current);
    return;
  }
  const step = run.steps[index]!;
  const rec = run.records[index]!;

  if (step.destructive) {
    if (rec.status === 'pending') return openGate(run, index, deps, guard, null);
    // Waiting for a click. Drawn again: a worker that died right after saving the gate never drew its buttons.
    if (rec.status === 'awaiting_approval') return notify.planChanged(run);
    if (rec.status === 'running') {
      // A resumed step ran once under a verified approval: it must still carry it, or "running" was written into Redis.
      const forged = approvalProblem(deps.hmacKey, run, index);
      if (forged) return refuseForged(run, index, forged, deps, guard);
    }
    if (rec.status === 'approved') {
      // An approval holds only within its window, counted up to the moment the step runs.
      const lapsed = await store.apply(runId, { kind: 'expire', step: index }, deps.now(), guard);
      if (lapsed.changed) {
        return openGate(lapsed.run, index, deps, guard, `The approval of step ${index + 1} by <@${rec.approvedBy}> expired at ${run.gate!.expiresAt}, before the step could run: it is void. Re-checked the cluster; approve again.`);
      }
      // An approval that does not verify was not given through a click (someone wrote it into Redis):
      // the step is refused and the run ends failed, on the record; nothing is done on the hosts.
      const forged = approvalProblem(deps.hmacKey, run, index);
      if (forged) return refuseForged(run, index, forged, deps, guard);
      // The approval holds only for the state it was given against.
      const now = await deps.observe(run.cluster);
      if (membershipFingerprint(now) !== membershipFingerprint(run.gate!.state)) {
        return openGate(run, index, deps, guard, `The cluster changed since the approval (${describeChange(run.gate!.state, now)}): the approval is void. Re-planned against the new state; approve again.`, now);
      }
      const notReady = await deps.beforeDestructive?.(run, index);
      if (notReady) {
        return openGate(run, index, deps, guard, `Step ${index + 1} did not run: a host this run needs is not ready.\n${notReady}\nNothing was done for step ${index + 1}. ${doneAndNotDone(run)} Fix the host and approve again, or \`/etcd cancel ${run.runId}\`.`, now);
      }
      await notify.thread(run, `:ballot_box_with_check: Step ${index + 1} approved by <@${rec.approvedBy}> at ${rec.approvedAt} (gate ${run.gate!.hash.slice(0, 12)}); the live cluster matches the approved state. Running.`);
    }
  }

  const started = await store.apply(runId, { kind: 'start-step', step: index, token }, deps.now(), guard);
  if (!started.changed) {
    // The run changed under us (a stop request, another job, a lapsed approval): act on what it is now.
    deps.log.info({ run: runId, step: index, reason: started.refused }, 'step not started');
    const latest = await store.get(runId);
    if (latest?.stopRequest && !TERMINAL.includes(latest.status)) return finish(latest, deps, guard);
    if (latest && latest.current === index && latest.records[index]?.status === 'approved') await deps.enqueueStep(runId, index, `regate-${latest.gate?.round ?? 0}`);
    return;
  }
  const resumed = rec.status === 'running';
  await notify.record(started.run, `Step ${index + 1} (${step.title}) started${resumed ? ' again' : ''}: ${step.operation}`);
  await notify.planChanged(started.run);
  if (resumed) await notify.thread(started.run, `:arrows_counterclockwise: Step ${index + 1} (${step.title}) was interrupted; resuming. It checks the cluster before acting, so nothing is done twice.`);

  let result: StepResult;
  const watch = deps.watchStop?.(runId);
  try {
    result = await deps.executors[step.kind](started.run, step, index, watch?.signal);
  } catch (err) {
    if (watch?.signal.aborted) return interrupted(started.run, index, err as Error, deps, token, guard);
    return fail(started.run, index, err as Error, deps, token, guard);
  } finally {
    watch?.stop();
  }
  if (faultNamesStep(deps.killAfter, run.steps, index) && !result.skipped) {
    // Fault injection (tests only): the worker dies right after the action, before recording it.
    process.kill(process.pid, 'SIGKILL');
  }

  const done = await store.apply(runId, { kind: 'complete-step', step: index, token, summary: result.summary, output: result.output, skipped: result.skipped, caveat: result.caveat }, deps.now(), guard);
  if (!done.changed) return lateResult(runId, index, done.refused, deps);
  const after = done.run;
  const last = after.status === 'done';
  killAfterRecordFault(run.steps, index); // tests only
  const excerpt = result.output ? `\n\`\`\`${result.output.slice(0, 1500)}\`\`\`` : '';
  const took = after.records[index]!.startedAt ? ` (${((Date.parse(after.records[index]!.endedAt!) - Date.parse(after.records[index]!.startedAt!)) / 1000).toFixed(1)} s)` : '';
  await notify.thread(after, `${result.skipped ? ':fast_forward:' : result.caveat ? ':warning:' : ':white_check_mark:'} Step ${index + 1}: ${step.title}: ${result.summary}${took}${excerpt}`, result.offer);
  if (last) {
    // The thread line first: once the message says DONE, the thread already says why.
    await store.unlockCluster(after.cluster, after.runId);
    await notify.thread(after, after.ended?.caveat ? `:warning: Run \`${after.runId}\` finished: every step done; ${after.ended.caveat}` : `:tada: Run \`${after.runId}\` finished: every step done.`);
    await notify.planChanged(after);
    return;
  }
  await notify.planChanged(after);
  await deps.enqueueStep(runId, index + 1);
}

/** An approval that does not verify with the HMAC key: the run ends failed, on the record, and the step does nothing. */
async function refuseForged(run: Run, index: number, forged: string, deps: EngineDeps, guard: LeaseGuard | undefined): Promise<void> {
  const why = `step ${index + 1} refused to run: ${forged}. Nothing was done by this step. The run's record in Redis cannot be trusted, so the run stops here; check who can write to Redis, then start a new run`;
  const res = await deps.store.apply(run.runId, { kind: 'abandon', reason: why }, deps.now(), guard);
  if (!res.changed) return lateResult(run.runId, index, res.refused, deps);
  deps.log.error({ run: run.runId, step: index, err: forged }, 'approval does not verify');
  await deps.store.unlockCluster(res.run.cluster, res.run.runId);
  await deps.notify.thread(res.run, `:x: Step ${index + 1} (${res.run.steps[index]!.title}) ${why}.\n${doneAndNotDone(res.run)}`);
  await deps.notify.planChanged(res.run);
}

/** A result this attempt may not record (its lease lapsed and another worker took the step over): dropped, said in the log. */
function lateResult(runId: string, index: number, why: string | undefined, deps: EngineDeps): void {
  deps.log.warn({ run: runId, step: index, reason: why }, 'step result not recorded: this worker no longer owns the step');
}

async function openGate(run: Run, index: number, deps: EngineDeps, guard: LeaseGuard | undefined, why: string | null, observed?: ObservedState): Promise<void> {
  const state = observed ?? (await deps.observe(run.cluster));
  const { run: gated, changed } = await deps.store.apply(run.runId, { kind: 'open-gate', step: index, state, ttlMs: deps.approvalTtlMs }, deps.now(), guard);
  if (!changed) return;
  killAtFault('gate-opened'); // tests only
  const step = gated.steps[index]!;
  await deps.notify.thread(
    gated,
    `${why ? `:warning: ${why}\n` : ''}:lock: Step ${index + 1} (${step.title}) waits for approval by someone other than <@${gated.requestedBy}>. Approval expires ${gated.gate!.expiresAt}.`,
  );
  await deps.notify.planChanged(gated);
}

async function fail(run: Run, index: number, err: Error, deps: EngineDeps, token: string, guard: LeaseGuard | undefined): Promise<void> {
  const res = await deps.store.apply(run.runId, { kind: 'fail-step', step: index, token, error: err.message }, deps.now(), guard);
  if (!res.changed) return lateResult(run.runId, index, res.refused, deps);
  const failed = res.run;
  deps.log.error({ run: run.runId, step: index, err: err.message }, 'step failed');
  await deps.store.unlockCluster(failed.cluster, failed.runId);
  await deps.notify.thread(failed, `:x: Step ${index + 1} (${failed.steps[index]!.title}) failed: ${err.message.slice(0, 1500)}\n${doneAndNotDone(failed)}`);
  await deps.notify.planChanged(failed);
}

/** A stop request cut a step short: the step did not complete, and the run ends as the request asked. */
async function interrupted(run: Run, index: number, err: Error, deps: EngineDeps, token: string, guard: LeaseGuard | undefined): Promise<void> {
  const res = await deps.store.apply(run.runId, { kind: 'interrupt-step', step: index, token, error: err.message }, deps.now(), guard);
  if (!res.changed) return fail(run, index, err, deps, token, guard);
  const ended = res.run;
  await deps.store.unlockCluster(ended.cluster, ended.runId);
  await deps.notify.thread(ended, `:octagonal_sign: Step ${index + 1} (${ended.steps[index]!.title}) was interrupted by the stop request, not completed: ${err.message.slice(0, 1500)}`);
  await deps.notify.thread(ended, `:no_entry: Run \`${ended.runId}\` ${ended.status} by <@${ended.stopRequest?.by}>. ${doneAndNotDone(ended)}`);
  await deps.notify.planChanged(ended);
}

async function finish(run: Run, deps: EngineDeps, guard: LeaseGuard | undefined): Promise<void> {
  // Holding the run lease, a step still marked running has no worker left on it (it was killed mid-step):
  // waiting for it to end would keep the run, and the cluster's lock, forever.
  const orphaned = !!guard && 'owner' in guard && run.records[run.current]?.status === 'running';
  const { run: ended, changed } = await deps.store.apply(run.runId, { kind: 'end-stopped', orphaned }, deps.now(), guard);
  if (!changed) return;
  await deps.store.unlockCluster(ended.cluster, ended.runId);
  if (orphaned) {
    await deps.notify.thread(ended, `:warning: Step ${run.current + 1} (${ended.steps[run.current]!.title}) had been started but its worker stopped before it finished: it may be partly done. Check ${ended.steps[run.current]!.host ?? 'the cluster'} before a new run.`);
  }
  await deps.notify.thread(ended, `:no_entry: Run \`${ended.runId}\` ${ended.status} by <@${ended.stopRequest?.by}>. ${doneAndNotDone(ended)}`);
  await deps.notify.planChanged(ended);
}

/** Exactly what was done and what was not, for a run that stopped early. */
export function doneAndNotDone(r: Run): string {
  const done = r.steps.map((s, i) => ({ s, i, x: r.records[i]! })).filter(({ x }) => x.status === 'done' || x.status === 'skipped');
  const notDone = r.steps.map((s, i) => ({ s, i, x: r.records[i]! })).filter(({ x }) => x.status !== 'done' && x.status !== 'skipped');
  const list = (xs: typeof done) => (xs.length ? xs.map(({ s, i }) => `${i + 1}. ${s.title}`).join('; ') : 'nothing');
  return `Done: ${list(done)}. Not done: ${list(notDone)}.`;
}
