import { createHmac } from 'node:crypto';
import { sameHex } from '../incident/chain.js';
import { gateHash, planHash } from '../runbook/hash.js';
import type { Run } from '../runbook/types.js';

/** What an accepted approval binds together: the run, the step, the gate (plan and state hash), who, when. */
export interface ApprovalFacts {
  runId: string;
  step: number;
  gateHash: string;
  approver: string;
  at: string;
}

/**
 * Signs an approval when the click is accepted, with the HMAC key from the
 * environment (never stored in Redis): writing "approved" into a run in Redis
 * is then not enough to make a destructive step run.
 */
export function signApproval(key: string, a: ApprovalFacts): string {
  return createHmac('sha256', key).update(`approval\n${a.runId}\n${a.step}\n${a.gateHash}\n${a.approver}\n${a.at}`).digest('hex');
}

/**
 * Checks the approval of step `index` right before it runs (status `approved`)
 * or is resumed (status `running`). Returns null when it verifies, else why not,
 * in words for the run's thread. The signature covers the gate hash only, so the
 * plan hash is computed again from the steps and the gate hash from the gate's
 * state: steps or a gate state edited in Redis after the click do not verify.
 */
export function approvalProblem(key: string, run: Run, index: number): string | null {
  const rec = run.records[index];
  if (!rec || (rec.status !== 'approved' && rec.status !== 'running')) return `step ${index + 1} is not approved`;
  if (!run.gate || run.gate.step !== index) return `step ${index + 1} has no open gate that an approval could belong to`;
  if (planHash(run) !== run.planHash) return `the steps of run ${run.runId} no longer match its plan hash ${String(run.planHash).slice(0, 12)} (changed after planning)`;
  if (gateHash(run, index, run.gate.state, run.gate.round) !== run.gate.hash) return `the gate of step ${index + 1} no longer matches the cluster state it was opened on (changed after the gate opened)`;
  if (!rec.approvedBy || !rec.approvedAt || !rec.approvalSig) return `the approval of step ${index + 1} carries no signature`;
  const expected = signApproval(key, { runId: run.runId, step: index, gateHash: run.gate.hash, approver: rec.approvedBy, at: rec.approvedAt });
  if (!sameHex(expected, rec.approvalSig)) return `the approval of step ${index + 1} (by <@${rec.approvedBy}> at ${rec.approvedAt}, gate ${run.gate.hash.slice(0, 12)}) does not match its signature`;
  return null;
}
