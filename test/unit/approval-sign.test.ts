import { describe, expect, it } from 'vitest';
import { approvalProblem, planProblem, sealPlan, signApproval } from '../../src/approvals/sign.js';
import { gateHash } from '../../src/runbook/hash.js';
import { newRun } from '../../src/runbook/new-run.js';
import type { Run, StepSpec } from '../../src/runbook/types.js';

const KEY = 'a'.repeat(64);

const STATE = { members: [], leaderHex: null, raftIndex: 1, revision: 1, at: '2026-11-26T00:59:00.000Z' };

/** A real run (plan and gate hashes computed as the engine does) whose step 2 is approved by UBOB. */
function approvedRun(sig?: (r: Run) => string): Run {
  const step = { kind: 'stop-and-move-aside', title: 's', destructive: true, operation: 'o', host: 'm2', params: {} } as StepSpec;
  const planned = newRun({ workspace: { roles: { approve: ['*'] } } } as never, { runId: 'r-1a2b3c4d', cluster: 'c', target: 'm2', steps: [step, step], plannedState: STATE, runbook: 'replace', title: 't', requestedBy: 'UALICE', channelId: 'C' } as never, new Date('2026-11-26T00:59:00.000Z'));
  // As the worker stores it: bound to its incident, its plan signed.
  const run = sealPlan(KEY, { ...planned, incidentId: 'inc-00000001' });
  run.current = 1;
  run.records = [{ status: 'done' }, { status: 'approved', approvedBy: 'UBOB', approvedAt: '2026-11-26T01:00:00.000Z' }];
  run.gate = { step: 1, hash: gateHash(run, 1, STATE, 1), state: STATE, openedAt: '2026-11-26T00:59:30.000Z', expiresAt: '2026-11-26T01:09:30.000Z', round: 1 };
  if (sig) run.records[1]!.approvalSig = sig(run);
  return run;
}
const signed = (r: Run) => signApproval(KEY, { runId: r.runId, step: 1, gateHash: r.gate!.hash, approver: 'UBOB', at: '2026-11-26T01:00:00.000Z' });

describe('signed approvals', () => {
  it('verifies an approval signed when the click was accepted', () => {
    expect(approvalProblem(KEY, approvedRun(signed), 1)).toBeNull();
  });

  it('refuses an approval written into Redis without a signature, or with another key', () => {
    expect(approvalProblem(KEY, approvedRun(), 1)).toBe('the approval of step 2 carries no signature');
    expect(approvalProblem('b'.repeat(64), approvedRun(signed), 1)).toContain('does not match its signature');
  });

  it('refuses a signed approval moved to another approver, gate, time or step', () => {
    const other = (change: (r: Run) => void) => {
      const r = approvedRun(signed);
      change(r);
      return approvalProblem(KEY, r, 1);
    };
    expect(other((r) => (r.records[1]!.approvedBy = 'UMALLORY'))).toContain('does not match');
    expect(other((r) => (r.gate!.hash = 'e'.repeat(64)))).toContain('no longer matches');
    expect(other((r) => (r.records[1]!.approvedAt = '2026-11-26T02:00:00.000Z'))).toContain('does not match');
    expect(other((r) => (r.gate!.step = 0))).toContain('no open gate');
    expect(other((r) => (r.runId = 'r-ffffffff'))).toMatch(/does not match|no longer match/);
  });

  it('refuses a signed approval whose steps or gate state were edited after the click, also on resume', () => {
    const other = (change: (r: Run) => void) => {
      const r = approvedRun(signed);
      change(r);
      return approvalProblem(KEY, r, 1);
    };
    expect(other((r) => (r.records[1]!.status = 'running'))).toBeNull();
    expect(other((r) => (r.steps[1]!.host = 'm3'))).toContain('no longer matches its plan hash');
    expect(other((r) => (r.gate!.state = { ...STATE, revision: 2, members: [{ idHex: 'ff' } as never] }))).toContain('no longer matches the cluster state');
  });

  it('refuses a run whose requester or incident was swapped in Redis, even with the plan hash computed again', () => {
    const other = (change: (r: Run) => void) => {
      const r = approvedRun(signed);
      change(r);
      return approvalProblem(KEY, r, 1);
    };
    // A new requester lets the one who asked approve their own plan; another incident has no record of the run's steps.
    expect(other((r) => (r.requestedBy = 'UBOB'))).toBe(
      'the plan of run r-1a2b3c4d (its steps, requester or incident) no longer matches its plan hash ' + approvedRun(signed).planHash.slice(0, 12) + ': it was changed in Redis after planning',
    );
    expect(other((r) => (r.incidentId = 'inc-00000002'))).toContain('no longer matches its plan hash');
    // Recomputing the (unkeyed) plan hash after the swap does not help: its signature needs the key.
    expect(other((r) => Object.assign(r, sealPlan('b'.repeat(64), { ...r, requestedBy: 'UBOB' })))).toContain('does not match its signature');
    expect(planProblem(KEY, sealPlan(KEY, { ...approvedRun(signed), requestedBy: 'UBOB' }))).toBeNull();
  });

  it('refuses a run without a plan signature: one removed in Redis, or a run planned before plans were signed', () => {
    const r = approvedRun(signed);
    delete r.planSig;
    expect(approvalProblem(KEY, r, 1)).toBe('run r-1a2b3c4d carries no plan signature: it was planned by an older version of the bot, or the signature was removed in Redis');
  });
});
