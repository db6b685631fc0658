import { describe, expect, it } from 'vitest';
import { threeMasters } from '../support/fixtures.js';
import { decideClick } from '../../src/approvals/decide.js';
import { newRun } from '../../src/runbook/new-run.js';
import { transition, type RunEvent } from '../../src/runbook/transition.js';
import type { ObservedState, Run, StepSpec } from '../../src/runbook/types.js';

const { inventory } = threeMasters('{ roles: { approve: [UBOB], destroy: [UALICE] } }');
const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 100, revision: 50, at: '2026-11-23T03:00:00.000Z' };
const t0 = new Date('2026-11-23T03:00:00Z');
const at = (min: number) => new Date(t0.getTime() + min * 60_000);
const TTL = 15 * 60_000;

// Transitions never read a step's params.
const step = (kind: StepSpec['kind'], destructive: boolean): StepSpec => ({ kind, title: kind, destructive, operation: kind, params: {} }) as StepSpec;
// Step 1 safe, step 2 destructive, step 3 safe: every kind of transition has a place.
const fresh = (): Run =>
  newRun(inventory, { runId: 'r-0000abcd', runbook: 'replace', title: 'Replace m3 in prod', cluster: 'prod', target: 'm3', steps: [step('snapshot', false), step('member-remove', true), step('verify', false)], plannedState: state, requestedBy: 'UALICE', channelId: 'CINC' }, t0);

/** Applies events in order, failing the test at the first refusal. */
function walk(run: Run, events: [RunEvent, Date][]): Run {
  for (const [e, now] of events) {
    const out = transition(run, e, now);
    if ('refused' in out) throw new Error(`${e.kind} refused: ${out.refused}`);
    run = out.run;
  }
  return run;
}
const refused = (run: Run, e: RunEvent, now = at(1)) => {
  const before = structuredClone(run);
  const out = transition(run, e, now);
  expect(run).toEqual(before); // pure: the input is never touched
  return 'refused' in out ? out.refused : null;
};

const START = (step: number, token = 'A'): RunEvent => ({ kind: 'start-step', step, token });
const DONE = (step: number, token = 'A'): RunEvent => ({ kind: 'complete-step', step, token, summary: 'ok' });
const gated = () => walk(fresh(), [[START(0), at(0)], [DONE(0), at(0)], [{ kind: 'open-gate', step: 1, state, ttlMs: TTL }, at(0)]]);
const approved = () => walk(gated(), [[{ kind: 'approve', step: 1, hash: gated().gate!.hash, by: 'UBOB' }, at(1)]]);

describe('run transitions: the allowed path', () => {
  it('walks a run from plan to done: start, complete, gate, approve, start, complete, complete', () => {
    let run = gated();
    expect(run).toMatchObject({ current: 1, status: 'awaiting_approval', gate: { step: 1, round: 1, expiresAt: at(15).toISOString() } });
    expect(run.records.map((r) => r.status)).toEqual(['done', 'awaiting_approval', 'pending']);
    run = walk(run, [[{ kind: 'approve', step: 1, hash: run.gate!.hash, by: 'UBOB' }, at(2)]]);
    expect(run.records[1]).toMatchObject({ status: 'approved', approvedBy: 'UBOB', approvedAt: at(2).toISOString() });
    run = walk(run, [[START(1, 'B'), at(3)]]);
    expect(run).toMatchObject({ status: 'running', attempt: { step: 1, token: 'B' } });
    run = walk(run, [[DONE(1, 'B'), at(4)], [START(2, 'C'), at(4)], [DONE(2, 'C'), at(5)]]);
    expect(run).toMatchObject({ current: 3, status: 'done', ended: { reason: 'every step done' } });
    expect(run.records.map((r) => r.status)).toEqual(['done', 'done', 'done']);
    expect(run.attempt).toBeUndefined();
  });

  it('resumes a step that was running (a crashed worker): a new token takes it over, attempts counted', () => {
    const run = walk(fresh(), [[START(0, 'A'), at(0)], [START(0, 'B'), at(1)]]);
    expect(run.records[0]).toMatchObject({ status: 'running', attempts: 2, startedAt: at(0).toISOString() });
    expect(run.attempt?.token).toBe('B');
  });

  it('fails a step: the run ends failed, the steps after it not run', () => {
    const run = walk(fresh(), [[START(0), at(0)], [{ kind: 'fail-step', step: 0, token: 'A', error: 'disk full' }, at(1)]]);
    expect(run).toMatchObject({ status: 'failed', ended: { reason: 'step 1 failed: disk full' } });
    expect(run.records.map((r) => r.status)).toEqual(['failed', 'not_run', 'not_run']);
  });

  it('reopens a lapsed gate on a click, and opens it again with a new round and hash', () => {
    const g = gated();
    const reopened = walk(g, [[{ kind: 'reopen', step: 1, hash: g.gate!.hash }, at(16)]]);
    expect(reopened.records[1]!.status).toBe('pending');
    const again = walk(reopened, [[{ kind: 'open-gate', step: 1, state, ttlMs: TTL }, at(16)]]);
    expect(again.gate).toMatchObject({ round: 2, expiresAt: at(31).toISOString() });
    expect(again.gate!.hash).not.toBe(g.gate!.hash);
  });

  it('voids an approval given at minute 14 of 15 and picked up at minute 16: the step re-gates', () => {
    const g = gated();
    const run = walk(g, [[{ kind: 'approve', step: 1, hash: g.gate!.hash, by: 'UBOB' }, at(14)]]);
    expect(refused(run, START(1), at(16))).toMatch(/approval of step 2 expired/);
    const lapsed = walk(run, [[{ kind: 'expire', step: 1 }, at(16)]]);
    expect(lapsed.records[1]).toEqual({ status: 'pending' });
    expect(walk(lapsed, [[{ kind: 'open-gate', step: 1, state, ttlMs: TTL }, at(16)]]).gate!.round).toBe(2);
    // Within the window, the approval holds and the step starts.
    expect(refused(run, { kind: 'expire', step: 1 }, at(14.5))).toMatch(/holds until/);
    expect(refused(run, START(1), at(14.5))).toBeNull();
  });

  it('stops: cancel or reject, then the run ends at the step boundary', () => {
    const stopping = walk(gated(), [[{ kind: 'stop', how: 'cancel', by: 'UALICE' }, at(1)]]);
    expect(stopping.stopRequest).toEqual({ kind: 'cancel', by: 'UALICE', at: at(1).toISOString() });
    const ended = walk(stopping, [[{ kind: 'end-stopped' }, at(2)]]);
    expect(ended).toMatchObject({ status: 'cancelled', ended: { reason: 'cancelled by <@UALICE>' } });
    expect(ended.records.map((r) => r.status)).toEqual(['done', 'not_run', 'not_run']);
    const rejected = walk(gated(), [[{ kind: 'stop', how: 'reject', by: 'UBOB' }, at(1)], [{ kind: 'end-stopped' }, at(1)]]);
    expect(rejected.status).toBe('rejected');
  });

  it('abandons a run nobody holds (attempts exhausted): failed, the running step named', () => {
    const run = walk(fresh(), [[START(0), at(0)], [{ kind: 'abandon', reason: 'step 1 exhausted its attempts' }, at(1)]]);
    expect(run).toMatchObject({ status: 'failed', ended: { reason: 'step 1 exhausted its attempts' } });
    expect(run.records.map((r) => r.status)).toEqual(['failed', 'not_run', 'not_run']);
  });
});

describe('run transitions: the forbidden ones', () => {
  const ended = () => walk(fresh(), [[START(0), at(0)], [{ kind: 'fail-step', step: 0, token: 'A', error: 'x' }, at(0)]]);

  it('changes nothing on an ended run, whatever the event', () => {
    const events: RunEvent[] = [
      { kind: 'approve', step: 1, hash: 'h', by: 'UBOB' },
      { kind: 'reopen', step: 1, hash: 'h' },
      { kind: 'expire', step: 1 },
      { kind: 'stop', how: 'cancel', by: 'UALICE' },
      { kind: 'end-stopped' },
      { kind: 'open-gate', step: 1, state, ttlMs: TTL },
      START(0),
      DONE(0),
      { kind: 'fail-step', step: 0, token: 'A', error: 'late' },
      { kind: 'abandon', reason: 'x' },
    ];
    for (const e of events) expect(refused(ended(), e), e.kind).toMatch(/has already ended \(failed\)/);
    const done = walk(approved(), [[START(1), at(2)], [DONE(1), at(2)], [START(2), at(2)], [DONE(2), at(2)]]);
    expect(refused(done, { kind: 'approve', step: 1, hash: done.gate!.hash, by: 'UBOB' })).toMatch(/already ended \(done\)/);
  });

  it('records a result only from the current attempt: a late worker cannot complete, fail or move current back', () => {
    // Worker A started step 1; its lease lapsed and worker B took the step over.
    const takenOver = walk(fresh(), [[START(0, 'A'), at(0)], [START(0, 'B'), at(1)]]);
    expect(refused(takenOver, DONE(0, 'A'))).toMatch(/another worker took step 1 over/);
    expect(refused(takenOver, { kind: 'fail-step', step: 0, token: 'A', error: 'lost Redis' })).toMatch(/another worker/);
    // B finished step 1: A's result for step 1 would move current backwards.
    const moved = walk(takenOver, [[DONE(0, 'B'), at(2)]]);
    expect(refused(moved, DONE(0, 'A'))).toMatch(/not the current step/);
    expect(refused(moved, DONE(0, 'B'))).toMatch(/not the current step/);
    expect(refused(moved, { kind: 'fail-step', step: 0, token: 'A', error: 'x' })).toMatch(/not the current step/);
    expect(refused(moved, START(0, 'A'))).toMatch(/not the current step/);
  });

  it('completes only the current, running step', () => {
    expect(refused(fresh(), DONE(1))).toMatch(/not the current step/);
    expect(refused(fresh(), DONE(0))).toMatch(/pending, not running/);
    expect(refused(gated(), DONE(1))).toMatch(/awaiting_approval, not running/);
    expect(refused(walk(fresh(), [[START(0), at(0)]]), DONE(2))).toMatch(/not the current step/);
  });

  it('never starts a destructive step without a live approval, nor a step that is not current', () => {
    const atGate = walk(fresh(), [[START(0), at(0)], [DONE(0), at(0)]]);
    expect(refused(atGate, START(1))).toMatch(/destructive and pending, not approved/);
    expect(refused(gated(), START(1))).toMatch(/destructive and awaiting_approval/);
    expect(refused(fresh(), START(2))).toMatch(/not the current step/);
    expect(refused(approved(), START(1), at(16))).toMatch(/expired/);
  });

  it('refuses approvals that do not fit: wrong gate, lapsed window, the requester, a step not waiting, twice', () => {
    const g = gated();
    expect(refused(g, { kind: 'approve', step: 1, hash: 'other', by: 'UBOB' })).toMatch(/older gate/);
    expect(refused(g, { kind: 'approve', step: 1, hash: g.gate!.hash, by: 'UBOB' }, at(15.1))).toMatch(/window closed/);
    expect(refused(g, { kind: 'approve', step: 1, hash: g.gate!.hash, by: 'UALICE' })).toMatch(/cannot approve/);
    expect(refused(g, { kind: 'approve', step: 2, hash: g.gate!.hash, by: 'UBOB' })).toMatch(/not waiting for approval/);
    expect(refused(approved(), { kind: 'approve', step: 1, hash: g.gate!.hash, by: 'UBOB' })).toMatch(/approved, not waiting/);
    expect(refused(walk(g, [[{ kind: 'stop', how: 'cancel', by: 'UALICE' }, at(1)]]), { kind: 'approve', step: 1, hash: g.gate!.hash, by: 'UBOB' })).toMatch(/being stopped/);
  });

  it('reopens and expires only lapsed gates, and only the gate the click was drawn for', () => {
    const g = gated();
    expect(refused(g, { kind: 'reopen', step: 1, hash: g.gate!.hash }, at(14))).toMatch(/still open/);
    expect(refused(g, { kind: 'reopen', step: 1, hash: 'old' }, at(16))).toMatch(/already opened again/);
    expect(refused(approved(), { kind: 'reopen', step: 1, hash: g.gate!.hash }, at(16))).toMatch(/not waiting/);
    expect(refused(g, { kind: 'expire', step: 1 }, at(16))).toMatch(/not an approved current step/);
  });

  it('opens gates only on the current destructive step, pending or approved', () => {
    expect(refused(fresh(), { kind: 'open-gate', step: 0, state, ttlMs: TTL })).toMatch(/not destructive/);
    expect(refused(fresh(), { kind: 'open-gate', step: 1, state, ttlMs: TTL })).toMatch(/not the current step/);
    expect(refused(gated(), { kind: 'open-gate', step: 1, state, ttlMs: TTL })).toMatch(/awaiting_approval/);
    expect(refused(walk(approved(), [[START(1), at(2)]]), { kind: 'open-gate', step: 1, state, ttlMs: TTL })).toMatch(/running/);
  });

  it('stops once, ends only when asked to stop, and not in the middle of a running step', () => {
    const stopping = walk(gated(), [[{ kind: 'stop', how: 'cancel', by: 'UALICE' }, at(1)]]);
    expect(refused(stopping, { kind: 'stop', how: 'reject', by: 'UBOB' })).toMatch(/already stopping \(cancel by <@UALICE>\)/);
    expect(refused(gated(), { kind: 'end-stopped' })).toMatch(/nobody asked/);
    const mid = walk(fresh(), [[START(0), at(0)], [{ kind: 'stop', how: 'cancel', by: 'UALICE' }, at(1)]]);
    expect(refused(mid, { kind: 'end-stopped' })).toMatch(/still running/);
    expect(refused(mid, START(0, 'B'))).toMatch(/being stopped/);
    expect(refused(stopping, { kind: 'open-gate', step: 1, state, ttlMs: TTL })).toMatch(/being stopped/);
    // The step in hand may still record its result; then the run ends.
    const after = walk(mid, [[DONE(0), at(2)], [{ kind: 'end-stopped' }, at(2)]]);
    expect(after.records.map((r) => r.status)).toEqual(['done', 'not_run', 'not_run']);
  });
});

describe('a click on a lapsed gate', () => {
  const groups = async () => [] as string[];
  const click = (run: Run, user: string) => decideClick(run, { runId: run.runId, step: 1, hash: run.gate!.hash }, 'approve', { userId: user, channelId: 'CINC' }, inventory.workspace, groups, at(16));

  it('reopens the gate only when an approver clicks; a stranger or the requester reopens nothing', async () => {
    expect(await click(gated(), 'UBOB')).toMatchObject({ ok: false, reopen: true });
    const stranger = await click(gated(), 'UEVE');
    expect(stranger).toMatchObject({ ok: false, reason: expect.stringContaining('*approve* role') });
    expect(stranger).not.toHaveProperty('reopen');
    const requester = await click(gated(), 'UALICE');
    expect(requester).toMatchObject({ ok: false, reason: expect.stringContaining('second person') });
    expect(requester).not.toHaveProperty('reopen');
  });
});
