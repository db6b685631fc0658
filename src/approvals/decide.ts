import type { Inventory } from '../config/schema.js';
import { TERMINAL, type Run } from '../runbook/types.js';
import { authorize, type GroupMembers } from '../slack/authorize.js';

/** What a button carries: which run, which step, which gate (hash) it was drawn for. */
export interface ClickValue {
  runId: string;
  step: number;
  hash: string;
}

export type ClickDecision =
  | { ok: true }
  | { ok: false; reason: string; /** the gate lapsed: the run should re-plan and ask again */ reopen?: boolean };

/**
 * Decides whether a click on Approve or Reject counts. Pure apart from the
 * group lookup: every refusal says why, in words for the person who clicked.
 */
export async function decideClick(
  run: Run | null,
  click: ClickValue,
  decision: 'approve' | 'reject',
  who: { userId: string; channelId: string },
  workspace: Inventory['workspace'],
  groupMembers: GroupMembers,
  now: Date,
): Promise<ClickDecision> {
  if (!run) return { ok: false, reason: `there is no run \`${click.runId}\`` };
  if (who.channelId !== run.channelId) return { ok: false, reason: `run \`${run.runId}\` belongs to <#${run.channelId}>; approve it there` };
  if (TERMINAL.includes(run.status)) return { ok: false, reason: `run \`${run.runId}\` has already ended (${run.status})` };
  if (run.stopRequest) return { ok: false, reason: `run \`${run.runId}\` is being stopped (${run.stopRequest.kind} by <@${run.stopRequest.by}>)` };
  const rec = run.records[click.step];
  if (!run.gate || run.gate.step !== click.step || !rec) {
    return { ok: false, reason: `step ${click.step + 1} of run \`${run.runId}\` is not waiting for approval` };
  }
  if (rec.status === 'approved' || rec.status === 'running' || rec.status === 'done') {
    return { ok: false, reason: `step ${click.step + 1} was already approved${rec.approvedBy ? ` by <@${rec.approvedBy}>` : ''}` };
  }
  if (rec.status !== 'awaiting_approval') return { ok: false, reason: `step ${click.step + 1} is ${rec.status}, not waiting for approval` };
  if (run.gate.hash !== click.hash) {
    return { ok: false, reason: 'these buttons belong to an older version of the plan; use the buttons on the plan message as it is now' };
  }

  if (decision === 'reject') {
    // Any approver may stop a run, and so may the person who asked for it.
    if (who.userId === run.requestedBy) return { ok: true };
    const d = await authorize(workspace, 'approve', who.userId, who.channelId, groupMembers);
    return d.ok ? d : { ok: false, reason: `only approvers or <@${run.requestedBy}> may reject: ${d.reason}` };
  }

  // Who may approve is checked before the window: a click by someone who could not
  // approve anyway must not make the bot re-plan and ask again.
  if (who.userId === run.requestedBy) {
    return { ok: false, reason: 'you asked for this run; a destructive step needs a second person to approve it' };
  }
  const d = await authorize(workspace, 'approve', who.userId, who.channelId, groupMembers);
  if (!d.ok) return d;
  if (now.getTime() > Date.parse(run.gate.expiresAt)) {
    return { ok: false, reason: `the approval window closed at ${run.gate.expiresAt}; the bot re-checks the cluster and asks again`, reopen: true };
  }
  return d;
}
