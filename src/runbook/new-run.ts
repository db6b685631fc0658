import type { Inventory } from '../config/schema.js';
import { planHash } from './hash.js';
import type { ObservedState, Run, StepSpec } from './types.js';

export interface NewRun {
  runId: string;
  runbook: Run['runbook'];
  title: string;
  rationale?: string;
  cluster: string;
  target: string;
  force?: boolean;
  steps: StepSpec[];
  plannedState: ObservedState;
  requestedBy: string;
  channelId: string;
}

/**
 * A planned run, before its first step: every step pending, its plan hashed, its approvers named.
 * The worker that stores it binds it to its incident and signs the plan (sealPlan in src/approvals/sign.ts).
 */
export function newRun(inventory: Inventory, p: NewRun, now: Date): Run {
  const base = { runId: p.runId, cluster: p.cluster, target: p.target, steps: p.steps, plannedState: p.plannedState, requestedBy: p.requestedBy };
  return {
    version: 0,
    ...base,
    runbook: p.runbook,
    title: p.title,
    rationale: p.rationale,
    force: p.force ?? false,
    channelId: p.channelId,
    createdAt: now.toISOString(),
    status: 'running',
    current: 0,
    records: p.steps.map(() => ({ status: 'pending' })),
    planHash: planHash(base),
    approvers: inventory.workspace.roles.approve,
  };
}
