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

const planSignature = (key: string, runId: string, hash: string) => createHmac('sha256', key).update(`plan\n${runId}\n${hash}`).digest('hex');

/**
 * A run as the worker stores it: bound to its incident (whose signed timeline
 * records its steps) and its plan hash signed. The plan hash alone is a plain
 * sha256 that anyone who can write Redis could compute again after swapping the
 * requester; its signature needs the key.
 */
export function sealPlan(key: string, run: Run): Run {
  const hash = planHash(run);
  return { ...run, planHash: hash, planSig: planSignature(key, run.runId, hash) };
}

/**
 * Whether the run is still the plan that was signed when it was stored: null,
 * or why not. A run stored before plans were signed has no signature and is
 * refused too (deleting the signature must not be a way around it).
 */
export function planProblem(key: string, run: Run): string | null {
  if (!run.planSig) return `run ${run.runId} carries no plan signature: it was planned by an older version of the bot, or the signature was removed in Redis`;
  if (!sameHex(planSignature(key, run.runId, String(run.planHash)), run.planSig)) return `the plan hash of run ${run.runId} does not match its signature: it was changed in Redis after planning`;
  if (planHash(run) !== run.planHash) {
    return `the plan of run ${run.runId} (its steps, requester or incident) no longer matches its plan hash ${String(run.planHash).slice(0, 12)}: it was changed in Redis after planning`;
  }
  return null;
}

/**
 * Checks the approval of step `index` right before it runs (status `approved`)
 * or is resumed (status `running`). Returns null when it verifies, else why not,
 * in words for the run's thread. The signature covers the gate hash only, so the
 * plan is checked against its own signature and hash (steps, requester, incident)
 * and the gate hash computed again from the gate's state: a run or gate state
 * edited in Redis after planning or after the click does not verify. Whether the
 * approval was already used is for the signed timeline to say (replay.ts).
 */
export function approvalProblem(key: string, run: Run, index: number): string | null {
  const rec = run.records[index];
  if (!rec || (rec.status !== 'approved' && rec.status !== 'running')) return `step ${index + 1} is not approved`;
  if (!run.gate || run.gate.step !== index) return `step ${index + 1} has no open gate that an approval could belong to`;
  const plan = planProblem(key, run);
  if (plan) return plan;
  if (gateHash(run, index, run.gate.state, run.gate.round) !== run.gate.hash) return `the gate of step ${index + 1} no longer matches the cluster state it was opened on (changed after the gate opened)`;
  if (!rec.approvedBy || !rec.approvedAt || !rec.approvalSig) return `the approval of step ${index + 1} carries no signature`;
  const expected = signApproval(key, { runId: run.runId, step: index, gateHash: run.gate.hash, approver: rec.approvedBy, at: rec.approvedAt });
  if (!sameHex(expected, rec.approvalSig)) return `the approval of step ${index + 1} (by <@${rec.approvedBy}> at ${rec.approvedAt}, gate ${run.gate.hash.slice(0, 12)}) does not match its signature`;
  return null;
}
