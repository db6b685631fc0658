import { randomBytes } from 'node:crypto';
import { endedUnrecorded, neverStarted, replayProblem, type SignedTimeline } from '../approvals/replay.js';
import { approvalProblem } from '../approvals/sign.js';
import type { StepMark } from '../incident/store.js';
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

/**
 * `signal` fires when the run gets a stop request: a long step (snapshot, wait) stops early.
 * `leaseLost` fires when this worker lost the run lease (Redis gone for longer than the lease):
 * another worker may be executing the step now, so host steps stop their SSH commands.
 * `stillOwns` is asked right before a step writes to an outside system (see StillOwns).
 */
export type StepExecutor = (run: Run, step: StepSpec, index: number, signal?: AbortSignal, leaseLost?: AbortSignal, stillOwns?: StillOwns) => Promise<StepResult>;

/**
 * Whether this attempt may still write for its step: null, or why not. The
 * lease signal alone is not enough: it fires only at the next renewal tick, and a
 * worker that was paused (or partitioned from Redis) past its lease can send a
 * write the moment it resumes, before that tick, though another worker took the
 * step over and the run went on. So Redis is asked: the run lease still holds
 * this attempt's token, and the run is at this step, running under that token.
 */
export type StillOwns = () => Promise<string | null>;

/**
 * The run's incident timeline as the record of its destructive steps: signed
 * with the HMAC key, append-only, a cut or rewrite detected. The engine writes
 * there that a destructive step starts (before it acts) and that it ended, and
 * reads it back before one runs: a Redis writer who sets a done step back
 * cannot make it run twice (src/approvals/replay.ts).
 */
export interface StepLedger {
  /** The run's incident timeline, read and checked in one step; null when the run names no incident. */
  read(run: Run): Promise<SignedTimeline | null>;
  /** Appends a signed entry carrying `mark`; throws when it could not be written. */
  mark(run: Run, mark: StepMark, text: string): Promise<void>;
}

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
  /** Where destructive steps' starts and ends are recorded and read back (the run's signed incident timeline). */
  ledger: StepLedger;
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
  /**
   * For a run that ended before its last step: what its steps left half-done on the hosts (a
   * kubelet restarted without its certificate and nobody to approve its CSRs), with the commands
   * to fix it (src/steps `leftBehind`); said in the thread and on the timeline after the end.
   */
  leftBehind?(run: Run): { text: string; offer?: CommandOffer } | null;
  /** Watches the run for a stop request while a step executes; its signal is passed to the executor. */
  watchStop?: (runId: string) => { signal: AbortSignal; stop(): void };
  /**
   * Asked once a run has ended before its last step (cancelled, rejected,
   * failed, refused): puts back what its started steps changed that must not
   * stay so (a deleted PDB, a StatefulSet on state existing); the lines say what.
   */
  undoOnEnd?(run: Run): Promise<string[]>;
}

/** What closing an ended run needs: the run store, the put-back, and where to say it. */
export type EndDeps = Pick<EngineDeps, 'store' | 'undoOnEnd' | 'notify' | 'log'>;

/**
 * The one way an ended run gives its cluster back, whoever ended it (its step's
 * worker, a stop, the sweeper giving up on it, a cancel of an ended run that
 * still holds the lock): first what its started steps changed that must not
 * stay so is put back (a run that did every step has nothing to put back),
 * said loudly in the thread and on the timeline, and only then is the cluster
 * freed. The put-back is idempotent: a worker that died between the end and
 * this leaves the lock held, and whoever frees it later puts back first.
 *
 * A put-back that fails (the admin cluster's API gone) keeps the cluster locked
 * to the run: a new run would otherwise start on it half put back and take the
 * deleted PDB for one that never was. The sweeper tries again at every pass and
 * frees it once the put-back works (or was done by hand: it then reads
 * "already"). Only a person's `/etcd cancel` of the ended run (`force`) frees it
 * whatever is left. Returns whether this call freed the lock.
 */
export async function putBackAndFree(run: Run, deps: EndDeps, opts: { force?: boolean; by?: string } = {}): Promise<boolean> {
  const whole = await putBack(run, deps, opts);
  if (!whole && !opts.force) return false;
  return deps.store.unlockCluster(run.cluster, run.runId);
}

/** How often a put-back that keeps failing says so again in the thread (every sweep tries it). */
const PUT_BACK_SAY_EVERY_MS = 10 * 60_000;

/**
 * A run that ended early puts back what must not stay changed, before its
 * cluster is free again, and says so loudly in the thread and on the timeline;
 * what it could not put back comes with the command to do it by hand. Returns
 * false when something could not be put back.
 */
async function putBack(run: Run, deps: EndDeps, opts: { force?: boolean; by?: string }): Promise<boolean> {
  if (!deps.undoOnEnd || run.status === 'done') return true;
  let lines: string[];
  try {
    lines = await deps.undoOnEnd(run);
  } catch (err) {
    lines = [`:x: could not put back what the run changed: ${(err as Error).message}`];
  }
  if (lines.length === 0) return true;
  const bad = lines.some((l) => l.startsWith(':x:'));
  deps.log.warn({ run: run.runId, lines }, bad ? 'run ended early: could NOT put back all it changed' : 'run ended early: put back what it changed');
  if (bad && !opts.force && !(await sayAgain(run, deps))) return false;
  const held = !bad
    ? ''
    : opts.force
      ? `\n${run.cluster} is freed anyway, on the word of ${opts.by ? `<@${opts.by}>` : 'the person who cancelled the run'}: what is marked :x: above must be put back by hand before the next run.`
      : `\n${run.cluster} stays locked to this run, so that no new run starts on it half put back: the put-back is tried again every few seconds and the cluster is freed once it works (done by hand, it then reads "already"). \`/etcd cancel ${run.runId}\` tries once more and frees ${run.cluster} whatever is left.`;
  await deps.notify.thread(run, `:rotating_light: Run \`${run.runId}\` ended ${run.status.toUpperCase()} before its last step${bad ? ': NOT everything it changed could be put back' : ''}. Put back:\n${lines.map((l) => `• ${l}`).join('\n')}${held}`);
  return !bad;
}

/** Whether a failed put-back of this run is said in the thread now: the first time, then at most every 10 minutes. */
async function sayAgain(run: Run, deps: EndDeps): Promise<boolean> {
  try {
    // A fresh owner each time: the lease is taken only once the last one lapsed.
    return await deps.store.leaseNamed(`put-back-said:${run.runId}`, randomBytes(4).toString('hex'), PUT_BACK_SAY_EVERY_MS);
  } catch {
    return true;
  }
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
    // Not put back whole: the cluster stays locked and the sweeper tries again (the put-back said so).
    if (!(await putBackAndFree(run, deps))) return;
    await notify.thread(run, `:information_source: Run \`${run.runId}\` ended ${run.status.toUpperCase()} (${run.ended?.reason ?? 'no reason saved'}); the worker stopped before it said so. ${doneAndNotDone(run)}`);
    await sayLeftBehind(run, deps);
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
    // Waiting for a click. Drawn again: a worker that died right after saving the gate never drew its buttons.
    if (rec.status === 'awaiting_approval') return notify.planChanged(run);
    if (rec.status === 'running') {
      // A resumed step ran once under a verified approval: it must still carry it, or "running" was written into Redis.
      const forged = approvalProblem(deps.hmacKey, run, index);
      if (forged) return refuseStep(run, index, forged, FORGED, deps, guard);
    }
    // The run's record says where the step is; the signed timeline says whether it already started
    // or ended. A record set back in Redis (a done step made pending, approved or running again, its
    // old approval still verifying) is refused here, before the step is gated or acts.
    const timeline = await deps.ledger.read(run);
    // Its end signed but not recorded (its worker stopped in between): recorded now from the timeline, not run again.
    const ended = endedUnrecorded(run, index, timeline);
    if (ended) return recordFromTimeline(run, index, ended, deps, token, guard);
    const replay = replayProblem(run, index, timeline);
    if (replay) return refuseStep(run, index, replay, timeline && !timeline.chain.ok ? BROKEN_TIMELINE : neverStarted(run, index, timeline) ? NEVER_STARTED : REPLAYED, deps, guard);
    if (rec.status === 'pending') return openGate(run, index, deps, guard, null);
    if (rec.status === 'approved') {
      // An approval holds only within its window, counted up to the moment the step runs.
      const lapsed = await store.apply(runId, { kind: 'expire', step: index }, deps.now(), guard);
      if (lapsed.changed) {
        return openGate(lapsed.run, index, deps, guard, `The approval of step ${index + 1} by <@${rec.approvedBy}> expired at ${run.gate!.expiresAt}, before the step could run: it is void. Re-checked the cluster; approve again.`);
      }
      // An approval that does not verify was not given through a click (someone wrote it into Redis):
      // the step is refused and the run ends failed, on the record; nothing is done on the hosts.
      const forged = approvalProblem(deps.hmacKey, run, index);
      if (forged) return refuseStep(run, index, forged, FORGED, deps, guard);
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
  const approved = started.run.records[index]!;
  if (step.destructive && !resumed) {
    // Before it acts, the signed record that it started and that its approval is used: without it the step does nothing.
    const mark: StepMark = { step: index, what: 'start', approval: approved.approvalSig! };
    const text = `Step ${index + 1} (${step.title}) started under the approval by <@${approved.approvedBy}> at ${approved.approvedAt} (signature ${String(approved.approvalSig).slice(0, 12)}), which is now used: ${step.operation}`;
    try {
      await deps.ledger.mark(started.run, mark, text);
    } catch (err) {
      return fail(started.run, index, new Error(`its start could not be written on the incident's signed timeline (${(err as Error).message}), so it did not act: nothing was done`), deps, token, guard, lease);
    }
  } else {
    await notify.record(started.run, `Step ${index + 1} (${step.title}) started${resumed ? ' again' : ''}: ${step.operation}`);
  }
  await notify.planChanged(started.run);
  if (resumed) await notify.thread(started.run, `:arrows_counterclockwise: Step ${index + 1} (${step.title}) was interrupted; resuming. It checks the cluster before acting, so nothing is done twice.`);

  // The start mark and the lines above wait on Redis (and Slack), the very thing whose loss lapses the lease: a
  // worker that lost it meanwhile may have had the step taken over (or the run refused and its cluster
  // freed) by another, so it must not act now. Host steps would stop at once; etcd steps would not.
  if (lease?.lost) return lateResult(runId, index, 'the run lease was lost before the step could act; it did nothing', deps);
  let result: StepResult;
  const watch = deps.watchStop?.(runId);
  try {
    const stillOwns: StillOwns | undefined = lease && (async () => (lease.lost ? 'the run lease lapsed on this worker' : store.stepOwner(runId, index, lease.token)));
    result = await deps.executors[step.kind](started.run, step, index, watch?.signal, lease?.signal, stillOwns);
  } catch (err) {
    if (watch?.signal.aborted) return interrupted(started.run, index, err as Error, deps, token, guard, lease);
    return fail(started.run, index, err as Error, deps, token, guard, lease);
  } finally {
    watch?.stop();
  }
  if (faultNamesStep(deps.killAfter, run.steps, index) && !result.skipped) {
    // Fault injection (tests only): the worker dies right after the action, before recording it.
    process.kill(process.pid, 'SIGKILL');
  }
  if (step.destructive) {
    // That it ended, signed, before the run's record says so: a record set back afterwards cannot make it run again.
    // If this cannot be written the job fails and is retried: a resume looks at the world before acting again.
    if (lease?.lost) return lateResult(runId, index, 'the run lease was lost before the step could be recorded', deps);
    await markEnd(started.run, index, result.skipped ? 'skipped' : 'done', deps);
    killAtFault('step-ended'); // tests only
  }

  return recordResult(started.run, index, result, deps, token, guard);
}

/** Records a step's result and moves the run on: the thread line, the next step's job, or the run's end. */
async function recordResult(run: Run, index: number, result: StepResult, deps: EngineDeps, token: string, guard: LeaseGuard | undefined): Promise<void> {
  const { store, notify } = deps;
  const { runId } = run;
  const step = run.steps[index]!;
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

/**
 * A destructive step whose signed end (done or skipped, under the approval it carries) is on the
 * timeline while its record still says running: its worker stopped between the two writes (killed,
 * Redis or its run lease lost). The step is recorded as the timeline says and the run goes on;
 * nothing is done on the hosts.
 */
async function recordFromTimeline(run: Run, index: number, end: { at: string; mark: StepMark }, deps: EngineDeps, token: string, guard: LeaseGuard | undefined): Promise<void> {
  const taken = await deps.store.apply(run.runId, { kind: 'start-step', step: index, token }, deps.now(), guard);
  if (!taken.changed) return lateResult(run.runId, index, taken.refused, deps);
  const outcome = end.mark.outcome ?? 'done';
  const summary = `ended (${outcome}) at ${end.at}, as its signed end on the timeline says; its worker stopped before recording it, so it is recorded now and not run again`;
  deps.log.warn({ run: run.runId, step: index, endedAt: end.at }, 'step ended on the timeline but not recorded: recorded from the timeline');
  return recordResult(taken.run, index, { summary, skipped: outcome === 'skipped' }, deps, token, guard);
}

const FORGED = "The run's record in Redis cannot be trusted, so the run stops here; check who can write to Redis, then start a new run";
const REPLAYED = "The run's record in Redis was set back to run it again, so the run stops here: an approval runs its step once. To do the step again, plan again (a new run, approved again), and check who can write to Redis";
const NEVER_STARTED =
  "It never acted (a step acts only once its start is signed), so the run stops here rather than run it without that record. If a worker was killed or lost Redis around then, that is all it was: plan again (a new run, approved again). If not, check who can write to Redis";
const BROKEN_TIMELINE = 'The timeline was changed in Redis, so the run stops here. Close this incident (`/etcd incident close`), open a new one and plan again, and check who can write to Redis';

/**
 * A destructive step that may not run (its approval does not verify with the HMAC key, or the
 * signed timeline says it already started or ended): the run ends failed, on the record, and the
 * step does nothing. `advice` says what to do next.
 */
async function refuseStep(run: Run, index: number, problem: string, advice: string, deps: EngineDeps, guard: LeaseGuard | undefined): Promise<void> {
  const what = `refused to run: ${problem}. Nothing was done by this step. ${advice}`;
  const why = `step ${index + 1} ${what}`;
  const res = await deps.store.apply(run.runId, { kind: 'abandon', reason: why }, deps.now(), guard);
  if (!res.changed) return lateResult(run.runId, index, res.refused, deps);
  deps.log.error({ run: run.runId, step: index, err: problem }, 'destructive step refused');
  await putBackAndFree(res.run, deps);
  await deps.notify.thread(res.run, `:x: Step ${index + 1} (${res.run.steps[index]!.title}) ${what}.\n${doneAndNotDone(res.run)}`);
  await sayLeftBehind(res.run, deps);
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

/** The signed "step ended" mark of a destructive step (see StepLedger). */
async function markEnd(run: Run, index: number, outcome: NonNullable<StepMark['outcome']>, deps: EngineDeps): Promise<void> {
  const step = run.steps[index]!;
  const sig = run.records[index]?.approvalSig;
  if (!step.destructive || !sig) return;
  const text = `Step ${index + 1} (${step.title}) ended (${outcome}). The approval it ran under (signature ${sig.slice(0, 12)}) is used up: the step does not run again in run \`${run.runId}\`.`;
  await deps.ledger.mark(run, { step: index, what: 'end', approval: sig, outcome }, text);
}

/** A failed or interrupted step's end mark: best effort, since the run ends anyway (it keeps a revived run from resuming it). */
async function markEndIfOwned(run: Run, index: number, outcome: 'failed' | 'interrupted', deps: EngineDeps, lease: RunLease | undefined): Promise<void> {
  if (lease?.lost) return;
  await markEnd(run, index, outcome, deps).catch((err: Error) => deps.log.warn({ run: run.runId, step: index, err: err.message }, 'could not write the end of the step on the timeline'));
}

async function fail(run: Run, index: number, err: Error, deps: EngineDeps, token: string, guard: LeaseGuard | undefined, lease?: RunLease): Promise<void> {
  await markEndIfOwned(run, index, 'failed', deps, lease);
  const res = await deps.store.apply(run.runId, { kind: 'fail-step', step: index, token, error: err.message }, deps.now(), guard);
  if (!res.changed) return lateResult(run.runId, index, res.refused, deps);
  const failed = res.run;
  deps.log.error({ run: run.runId, step: index, err: err.message }, 'step failed');
  await deps.notify.thread(failed, `:x: Step ${index + 1} (${failed.steps[index]!.title}) failed: ${err.message.slice(0, 1500)}\n${doneAndNotDone(failed)}`);
  await putBackAndFree(failed, deps);
  await sayLeftBehind(failed, deps);
  await deps.notify.planChanged(failed);
}

/** A stop request cut a step short: the step did not complete, and the run ends as the request asked. */
async function interrupted(run: Run, index: number, err: Error, deps: EngineDeps, token: string, guard: LeaseGuard | undefined, lease?: RunLease): Promise<void> {
  await markEndIfOwned(run, index, 'interrupted', deps, lease);
  const res = await deps.store.apply(run.runId, { kind: 'interrupt-step', step: index, token, error: err.message }, deps.now(), guard);
  if (!res.changed) return fail(run, index, err, deps, token, guard, lease);
  const ended = res.run;
  await putBackAndFree(ended, deps);
  await deps.notify.thread(ended, `:octagonal_sign: Step ${index + 1} (${ended.steps[index]!.title}) was interrupted by the stop request, not completed: ${err.message.slice(0, 1500)}`);
  await deps.notify.thread(ended, `:no_entry: Run \`${ended.runId}\` ${ended.status} by <@${ended.stopRequest?.by}>. ${doneAndNotDone(ended)}`);
  await sayLeftBehind(ended, deps);
  await deps.notify.planChanged(ended);
}

/** After a run's end: what its steps left half-done, loudly, with the commands to fix it (nothing when nothing is left). */
export async function sayLeftBehind(run: Run, deps: Pick<EngineDeps, 'leftBehind' | 'notify' | 'log'>): Promise<void> {
  let left: ReturnType<NonNullable<EngineDeps['leftBehind']>> = null;
  try {
    left = deps.leftBehind?.(run) ?? null;
  } catch (err) {
    deps.log.error({ run: run.runId, err: (err as Error).message }, 'could not say what the run left half-done');
  }
  if (left) await deps.notify.thread(run, left.text, left.offer);
}

async function finish(run: Run, deps: EngineDeps, guard: LeaseGuard | undefined): Promise<void> {
  // Holding the run lease, a step still marked running has no worker left on it (it was killed mid-step):
  // waiting for it to end would keep the run, and the cluster's lock, forever.
  const orphaned = !!guard && 'owner' in guard && run.records[run.current]?.status === 'running';
  const { run: ended, changed } = await deps.store.apply(run.runId, { kind: 'end-stopped', orphaned }, deps.now(), guard);
  if (!changed) return;
  await putBackAndFree(ended, deps);
  if (orphaned) {
    await deps.notify.thread(ended, `:warning: Step ${run.current + 1} (${ended.steps[run.current]!.title}) had been started but its worker stopped before it finished: it may be partly done. Check ${ended.steps[run.current]!.host ?? 'the cluster'} before a new run.`);
  }
  await deps.notify.thread(ended, `:no_entry: Run \`${ended.runId}\` ${ended.status} by <@${ended.stopRequest?.by}>. ${doneAndNotDone(ended)}`);
  await sayLeftBehind(ended, deps);
  await deps.notify.planChanged(ended);
}

/** Exactly what was done and what was not, for a run that stopped early. */
export function doneAndNotDone(r: Run): string {
  const done = r.steps.map((s, i) => ({ s, i, x: r.records[i]! })).filter(({ x }) => x.status === 'done' || x.status === 'skipped');
  const notDone = r.steps.map((s, i) => ({ s, i, x: r.records[i]! })).filter(({ x }) => x.status !== 'done' && x.status !== 'skipped');
  const list = (xs: typeof done) => (xs.length ? xs.map(({ s, i }) => `${i + 1}. ${s.title}`).join('; ') : 'nothing');
  return `Done: ${list(done)}. Not done: ${list(notDone)}.`;
}
