import { describe, expect, it } from 'vitest';
import { approvalProblem, signApproval } from '../../src/approvals/sign.js';
import type { Run } from '../../src/runbook/types.js';

const KEY = 'a'.repeat(64);

function approvedRun(sig?: (r: Run) => string): Run {
  const run = {
    runId: 'r-1a2b3c4d',
    gate: { step: 1, hash: 'f'.repeat(64), round: 1 },
    records: [{ status: 'done' }, { status: 'approved', approvedBy: 'UBOB', approvedAt: '2026-11-26T01:00:00.000Z' }],
  } as unknown as Run;
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
    expect(other((r) => (r.gate!.hash = 'e'.repeat(64)))).toContain('does not match');
    expect(other((r) => (r.records[1]!.approvedAt = '2026-11-26T02:00:00.000Z'))).toContain('does not match');
    expect(other((r) => (r.runId = 'r-ffffffff'))).toContain('does not match');
    expect(other((r) => (r.gate!.step = 0))).toContain('no open gate');
  });
});
