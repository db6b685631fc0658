import { gateHash } from './hash.js';
import { TERMINAL, type ObservedState, type Run } from './types.js';

/**
 * Every change of a run's state, as data. The click handler, `/etcd cancel`,
 * the engine and the sweeper all describe what happened as one of these and
 * let `transition` decide whether it may happen; the store then writes the
 * result atomically (guarded by the run lease where a worker writes).
 */
export type RunEvent =
  /** A destructive step waits for a second person; the gate is bound to `state`. */
  | { kind: 'open-gate'; step: number; state: ObservedState; ttlMs: number }
  /** `sig`: the approval's HMAC (src/approvals/sign.ts), over the run, step, gate hash, approver and `now`. */
  | { kind: 'approve'; step: number; hash: string; by: string; sig?: string }
  /** A click on a lapsed gate: the step goes back to pending and the engine opens a new gate. */
  | { kind: 'reopen'; step: number; hash: string }
  /** An approved step picked up after its gate lapsed: the approval is void, the step re-gates. */
  | { kind: 'expire'; step: number }
  /** Reject (a click) or cancel (`/etcd cancel`): the run ends at the next step boundary. */
  | { kind: 'stop'; how: 'cancel' | 'reject'; by: string }
  /**
   * The step boundary after a stop request: the run ends cancelled or rejected.
   * `orphaned`: the caller holds the run lease and finds the current step still
   * running, so the worker that ran it is gone (killed mid-step): that step ends
   * failed, marked as possibly partly done, instead of the run waiting forever.
   */
  | { kind: 'end-stopped'; orphaned?: boolean }
  /** A worker starts (or resumes) the current step, holding the run lease `token`. */
  | { kind: 'start-step'; step: number; token: string }
  | { kind: 'complete-step'; step: number; token: string; summary: string; output?: string; skipped?: boolean; caveat?: string }
  | { kind: 'fail-step'; step: number; token: string; error: string }
  /** A stop request cut the running step short (`/etcd cancel` mid-snapshot): the step did not complete, the run ends as asked. */
  | { kind: 'interrupt-step'; step: number; token: string; error: string }
  /** The run cannot go on and no worker holds it (attempts exhausted, its start undone): it ends failed. */
  | { kind: 'abandon'; reason: string };

export type TransitionResult = { run: Run } | { refused: string };

const iso = (d: Date) => d.toISOString();

/**
 * The one place that says how a run may change. Pure: it returns a new run (the
 * input is not touched) or the reason the event is refused. It never moves
 * `current` backwards, never changes an ended run, and lets only the holder of
 * the current attempt's token record that step's result.
 */
export function transition(run: Run, event: RunEvent, now: Date): TransitionResult {
  const refuse = (why: string): TransitionResult => ({ refused: why });
  if (TERMINAL.includes(run.status)) return refuse(`run ${run.runId} has already ended (${run.status})`);
  const r = structuredClone(run);
  const stepOf = (i: number) => (i === r.current && i < r.steps.length ? r.records[i]! : null);
  const expired = () => !!r.gate && now.getTime() > Date.parse(r.gate.expiresAt);

  switch (event.kind) {
    case 'open-gate': {
      if (r.stopRequest) return refuse('the run is being stopped');
      const x = stepOf(event.step);
      if (!x) return refuse(`step ${event.step + 1} is not the current step (${r.current + 1})`);
      if (!r.steps[event.step]!.destructive) return refuse(`step ${event.step + 1} is not destructive; it needs no approval`);
      if (x.status !== 'pending' && x.status !== 'approved') return refuse(`step ${event.step + 1} is ${x.status}; a gate opens only on a pending or approved step`);
      const round = (r.gate?.step === event.step ? r.gate.round : 0) + 1;
      r.gate = {
        step: event.step,
        hash: gateHash(r, event.step, event.state, round),
        state: event.state,
        openedAt: iso(now),
        expiresAt: iso(new Date(now.getTime() + event.ttlMs)),
        round,
      };
      x.status = 'awaiting_approval';
      delete x.approvedBy;
      delete x.approvedAt;
      delete x.approvalSig;
      r.status = 'awaiting_approval';
      return { run: r };
    }

    case 'approve': {
      if (r.stopRequest) return refuse(`the run is being stopped (${r.stopRequest.kind} by <@${r.stopRequest.by}>)`);
      const x = stepOf(event.step);
      if (!x || !r.gate || r.gate.step !== event.step) return refuse(`step ${event.step + 1} is not waiting for approval`);
      if (x.status !== 'awaiting_approval') return refuse(`step ${event.step + 1} is ${x.status}, not waiting for approval`);
      if (r.gate.hash !== event.hash) return refuse('the approval was given for an older gate of this step');
      if (expired()) return refuse(`the approval window closed at ${r.gate.expiresAt}`);
      if (event.by === r.requestedBy) return refuse('the person who asked for the run cannot approve its destructive steps');
      x.status = 'approved';
      x.approvedBy = event.by;
      x.approvedAt = iso(now);
      if (event.sig) x.approvalSig = event.sig;
      else delete x.approvalSig;
      return { run: r };
    }

    case 'reopen': {
      const x = stepOf(event.step);
      if (!x || x.status !== 'awaiting_approval' || r.gate?.step !== event.step) return refuse(`step ${event.step + 1} is not waiting for approval`);
      if (r.gate.hash !== event.hash) return refuse('the gate was already opened again');
      if (!expired()) return refuse(`the gate is still open until ${r.gate.expiresAt}`);
      x.status = 'pending';
      return { run: r };
    }

    case 'expire': {
      const x = stepOf(event.step);
      if (!x || x.status !== 'approved') return refuse(`step ${event.step + 1} is not an approved current step`);
      if (!expired()) return refuse(`the approval holds until ${r.gate!.expiresAt}`);
      x.status = 'pending';
      delete x.approvedBy;
      delete x.approvedAt;
      delete x.approvalSig;
      return { run: r };
    }

    case 'stop': {
      if (r.stopRequest) return refuse(`the run is already stopping (${r.stopRequest.kind} by <@${r.stopRequest.by}>)`);
      r.stopRequest = { kind: event.how, by: event.by, at: iso(now) };
      return { run: r };
    }

    case 'end-stopped': {
      if (!r.stopRequest) return refuse('nobody asked to stop the run');
      const x = r.records[r.current];
      if (x?.status === 'running' && !event.orphaned) return refuse(`step ${r.current + 1} is still running; the run stops when it ends`);
      const status = r.stopRequest.kind === 'cancel' ? 'cancelled' : 'rejected';
      let during = '';
      if (x?.status === 'running') {
        x.status = 'failed';
        x.endedAt = iso(now);
        x.error = `the worker running step ${r.current + 1} stopped before it finished (killed or cut off); the step may be partly done: check the host before a new run`;
        delete r.attempt;
        during = ` during step ${r.current + 1}, whose worker had stopped`;
      }
      r.status = status;
      r.ended = { at: iso(now), reason: `${status} by <@${r.stopRequest.by}>${during}` };
      markNotRun(r);
      return { run: r };
    }

    case 'start-step': {
      if (r.stopRequest) return refuse('the run is being stopped');
      const x = stepOf(event.step);
      if (!x) return refuse(`step ${event.step + 1} is not the current step (${r.current + 1})`);
      const destructive = r.steps[event.step]!.destructive;
      if (destructive && x.status !== 'approved' && x.status !== 'running') return refuse(`step ${event.step + 1} is destructive and ${x.status}, not approved`);
      if (destructive && x.status === 'approved' && expired()) return refuse(`the approval of step ${event.step + 1} expired at ${r.gate!.expiresAt}`);
      if (!destructive && x.status !== 'pending' && x.status !== 'running') return refuse(`step ${event.step + 1} is ${x.status}`);
      x.attempts = (x.attempts ?? 0) + 1;
      if (x.status !== 'running') x.startedAt = iso(now);
      x.status = 'running';
      r.status = 'running';
      r.attempt = { step: event.step, token: event.token, at: iso(now) };
      return { run: r };
    }

    case 'complete-step':
    case 'fail-step': {
      const x = stepOf(event.step);
      if (!x) return refuse(`step ${event.step + 1} is not the current step (${r.current + 1}); its result is not recorded`);
      if (x.status !== 'running') return refuse(`step ${event.step + 1} is ${x.status}, not running`);
      if (r.attempt?.step !== event.step || r.attempt.token !== event.token) return refuse(`another worker took step ${event.step + 1} over; this result is not recorded`);
      x.endedAt = iso(now);
      delete r.attempt;
      if (event.kind === 'fail-step') {
        x.status = 'failed';
        x.error = event.error.slice(0, 1500);
        r.status = 'failed';
        r.ended = { at: iso(now), reason: `step ${event.step + 1} failed: ${event.error.slice(0, 300)}` };
        markNotRun(r);
        return { run: r };
      }
      x.status = event.skipped ? 'skipped' : 'done';
      x.summary = event.summary;
      x.output = event.output?.slice(0, 1500);
      if (event.caveat) x.caveat = event.caveat.slice(0, 1500);
      else delete x.caveat;
      r.current = event.step + 1;
      if (r.current === r.steps.length) {
        r.status = 'done';
        // A caveat of any step (the DNS names at verify, Kubernetes at the last) outlives the steps after it, in step order.
        const caveat = r.records.flatMap((rec) => (rec.caveat ? [rec.caveat] : [])).join(' · ');
        r.ended = caveat ? { at: iso(now), reason: `every step done; ${caveat.slice(0, 300)}`, caveat: caveat.slice(0, 1500) } : { at: iso(now), reason: 'every step done' };
      }
      return { run: r };
    }

    case 'interrupt-step': {
      if (!r.stopRequest) return refuse('nobody asked to stop the run; a step that fails is recorded as failed');
      const x = stepOf(event.step);
      if (!x || x.status !== 'running') return refuse(`step ${event.step + 1} is not the running step`);
      if (r.attempt?.step !== event.step || r.attempt.token !== event.token) return refuse(`another worker took step ${event.step + 1} over; this result is not recorded`);
      x.status = 'failed';
      x.endedAt = iso(now);
      x.error = `interrupted by the stop request: ${event.error}`.slice(0, 1500);
      delete r.attempt;
      const status = r.stopRequest.kind === 'cancel' ? 'cancelled' : 'rejected';
      r.status = status;
      r.ended = { at: iso(now), reason: `${status} by <@${r.stopRequest.by}> during step ${event.step + 1}` };
      markNotRun(r);
      return { run: r };
    }

    case 'abandon': {
      const x = r.records[r.current];
      if (x?.status === 'running') {
        x.status = 'failed';
        x.endedAt = iso(now);
        x.error = event.reason.slice(0, 1500);
      }
      delete r.attempt;
      r.status = 'failed';
      r.ended = { at: iso(now), reason: event.reason.slice(0, 300) };
      markNotRun(r);
      return { run: r };
    }
  }
}

/** Steps that will never run now that the run ends. */
function markNotRun(r: Run): void {
  for (const x of r.records) if (['pending', 'awaiting_approval', 'approved'].includes(x.status)) x.status = 'not_run';
}
