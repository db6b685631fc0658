import type { Logger } from '../log.js';
import { describeChange, gateHash, membershipFingerprint } from './hash.js';
import { faultNamesStep, killAfterRecordFault } from './fault.js';
import { killAtFault } from '../fault.js';
import type { RunStore } from './store.js';
import { TERMINAL, type ObservedState, type Run, type StepKind, type StepSpec } from './types.js';

export interface StepResult {
  /** One line for the plan message and the thread. */
  summary: string;
  /** An excerpt of what the operation printed, for the thread. */
  output?: string;
  /** The world already looked as this step would leave it: nothing was done. */
  skipped?: boolean;
}

export type StepExecutor = (run: Run, step: StepSpec, index: number) => Promise<StepResult>;

/** How the engine tells people what happens; the worker backs it with Slack. */
export interface RunNotifier {
  /** Redraws the plan message in place (posts it the first time). */
  planChanged(run: Run): Promise<void>;
  /** A line in the plan message's thread (and on the incident timeline). */
  thread(run: Run, text: string): Promise<void>;
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
  now: () => Date;
  log: Logger;
  /** Fault injection for tests: the step (`kind` or `kind#n`) after whose action this process is killed. */
  killAfter?: string;
}

const iso = (d: Date) => d.toISOString();

/**
 * Moves a run forward by one step. Called for every step job; safe to call
 * twice for the same step, after a crash, or out of order: it reads the run,
 * decides from its stored state, and each executor looks at the world before
 * it acts.
 */
export async function processStep(runId: string, index: number, deps: EngineDeps): Promise<void> {
  const { store, notify } = deps;
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

  if (run.stopRequest) return finish(run, run.stopRequest.kind === 'cancel' ? 'cancelled' : 'rejected', deps);
  if (run.current !== index) {
    // A stale or duplicate job. If the run moved on but its next job was lost
    // (a crash between saving and enqueueing), put that job back.
    if (run.current > index && run.current < run.steps.length) await deps.enqueueStep(runId, run.current);
    return;
  }
  const step = run.steps[index]!;
  const rec = run.records[index]!;

  if (step.destructive) {
    if (rec.status === 'pending') return openGate(run, index, deps, null);
    // Waiting for a click. Drawn again: a worker that died right after saving the gate never drew its buttons.
    if (rec.status === 'awaiting_approval') return notify.planChanged(run);
    if (rec.status === 'approved') {
      // The approval holds only for the state it was given against.
      const now = await deps.observe(run.cluster);
      if (membershipFingerprint(now) !== membershipFingerprint(run.gate!.state)) {
        return openGate(run, index, deps, `The cluster changed since the approval (${describeChange(run.gate!.state, now)}): the approval is void. Re-planned against the new state; approve again.`, now);
      }
      await notify.thread(run, `:ballot_box_with_check: Step ${index + 1} approved by <@${rec.approvedBy}> at ${rec.approvedAt} (gate ${run.gate!.hash.slice(0, 12)}); the live cluster matches the approved state. Running.`);
    }
  }

  const started = await store.update(runId, (r) => {
    if (r.current !== index || TERMINAL.includes(r.status) || r.stopRequest) return null;
    const x = r.records[index]!;
    x.attempts = (x.attempts ?? 0) + 1;
    if (x.status !== 'running') x.startedAt = iso(deps.now());
    x.status = 'running';
    r.status = 'running';
    return r;
  });
  if (!started.changed) {
    // The run changed under us (a stop request, another job): act on what it is now.
    const latest = await store.get(runId);
    if (latest?.stopRequest && !TERMINAL.includes(latest.status)) return finish(latest, latest.stopRequest.kind === 'cancel' ? 'cancelled' : 'rejected', deps);
    return;
  }
  const resumed = rec.status === 'running';
  await notify.record(started.run, `Step ${index + 1} (${step.title}) started${resumed ? ' again' : ''}: ${step.operation}`);
  await notify.planChanged(started.run);
  if (resumed) await notify.thread(started.run, `:arrows_counterclockwise: Step ${index + 1} (${step.title}) was interrupted; resuming. It checks the cluster before acting, so nothing is done twice.`);

  let result: StepResult;
  try {
    result = await deps.executors[step.kind](started.run, step, index);
  } catch (err) {
    return fail(started.run, index, err as Error, deps);
  }
  if (faultNamesStep(deps.killAfter, run.steps, index) && !result.skipped) {
    // Fault injection (tests only): the worker dies right after the action, before recording it.
    process.kill(process.pid, 'SIGKILL');
  }

  const last = index === run.steps.length - 1;
  const { run: after } = await store.update(runId, (r) => {
    const x = r.records[index]!;
    x.status = result.skipped ? 'skipped' : 'done';
    x.endedAt = iso(deps.now());
    x.summary = result.summary;
    x.output = result.output?.slice(0, 1500);
    r.current = index + 1;
    if (last) {
      r.status = 'done';
      r.ended = { at: iso(deps.now()), reason: 'every step done' };
    }
    return r;
  });
  killAfterRecordFault(run.steps, index); // tests only
  const excerpt = result.output ? `\n\`\`\`${result.output.slice(0, 1500)}\`\`\`` : '';
  const took = after.records[index]!.startedAt ? ` (${((Date.parse(after.records[index]!.endedAt!) - Date.parse(after.records[index]!.startedAt!)) / 1000).toFixed(1)} s)` : '';
  await notify.thread(after, `${result.skipped ? ':fast_forward:' : ':white_check_mark:'} Step ${index + 1}: ${step.title}: ${result.summary}${took}${excerpt}`);
  if (last) {
    // The thread line first: once the message says DONE, the thread already says why.
    await store.unlockCluster(after.cluster, after.runId);
    await notify.thread(after, `:tada: Run \`${after.runId}\` finished: every step done.`);
    await notify.planChanged(after);
    return;
  }
  await notify.planChanged(after);
  await deps.enqueueStep(runId, index + 1);
}

async function openGate(run: Run, index: number, deps: EngineDeps, why: string | null, observed?: ObservedState): Promise<void> {
  const state = observed ?? (await deps.observe(run.cluster));
  const now = deps.now();
  const { run: gated, changed } = await deps.store.update(run.runId, (r) => {
    if (r.current !== index || TERMINAL.includes(r.status) || r.stopRequest) return null;
    const round = (r.gate?.step === index ? r.gate.round : 0) + 1;
    r.gate = {
      step: index,
      hash: gateHash(r, index, state, round),
      state,
      openedAt: iso(now),
      expiresAt: iso(new Date(now.getTime() + deps.approvalTtlMs)),
      round,
    };
    r.records[index]!.status = 'awaiting_approval';
    delete r.records[index]!.approvedBy;
    delete r.records[index]!.approvedAt;
    r.status = 'awaiting_approval';
    return r;
  });
  if (!changed) return;
  killAtFault('gate-opened'); // tests only
  const step = gated.steps[index]!;
  await deps.notify.thread(
    gated,
    `${why ? `:warning: ${why}\n` : ''}:lock: Step ${index + 1} (${step.title}) waits for approval by someone other than <@${gated.requestedBy}>. Approval expires ${gated.gate!.expiresAt}.`,
  );
  await deps.notify.planChanged(gated);
}

async function fail(run: Run, index: number, err: Error, deps: EngineDeps): Promise<void> {
  const { run: failed } = await deps.store.update(run.runId, (r) => {
    const x = r.records[index]!;
    x.status = 'failed';
    x.endedAt = iso(deps.now());
    x.error = err.message.slice(0, 1500);
    r.status = 'failed';
    r.ended = { at: iso(deps.now()), reason: `step ${index + 1} failed: ${err.message.slice(0, 300)}` };
    markNotRun(r);
    return r;
  });
  deps.log.error({ run: run.runId, step: index, err: err.message }, 'step failed');
  await deps.store.unlockCluster(failed.cluster, failed.runId);
  await deps.notify.thread(failed, `:x: Step ${index + 1} (${failed.steps[index]!.title}) failed: ${err.message.slice(0, 1500)}\n${doneAndNotDone(failed)}`);
  await deps.notify.planChanged(failed);
}

async function finish(run: Run, status: 'cancelled' | 'rejected', deps: EngineDeps): Promise<void> {
  const { run: ended, changed } = await deps.store.update(run.runId, (r) => {
    if (TERMINAL.includes(r.status)) return null;
    r.status = status;
    r.ended = { at: iso(deps.now()), reason: `${status} by <@${r.stopRequest?.by}>` };
    markNotRun(r);
    return r;
  });
  if (!changed) return;
  await deps.store.unlockCluster(ended.cluster, ended.runId);
  await deps.notify.thread(ended, `:no_entry: Run \`${ended.runId}\` ${status} by <@${ended.stopRequest?.by}>. ${doneAndNotDone(ended)}`);
  await deps.notify.planChanged(ended);
}

function markNotRun(r: Run): void {
  for (const x of r.records) if (['pending', 'awaiting_approval', 'approved'].includes(x.status)) x.status = 'not_run';
}

/** Exactly what was done and what was not, for a run that stopped early. */
export function doneAndNotDone(r: Run): string {
  const done = r.steps.map((s, i) => ({ s, i, x: r.records[i]! })).filter(({ x }) => x.status === 'done' || x.status === 'skipped');
  const notDone = r.steps.map((s, i) => ({ s, i, x: r.records[i]! })).filter(({ x }) => x.status !== 'done' && x.status !== 'skipped');
  const list = (xs: typeof done) => (xs.length ? xs.map(({ s, i }) => `${i + 1}. ${s.title}`).join('; ') : 'nothing');
  return `Done: ${list(done)}. Not done: ${list(notDone)}.`;
}
