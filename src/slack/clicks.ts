import type { Inventory } from '../config/schema.js';
import { decideClick } from '../approvals/decide.js';
import { planProblem, signApproval } from '../approvals/sign.js';
import type { Logger } from '../log.js';
import { decodeClick } from '../render/run-message.js';
import type { RunStore } from '../runbook/store.js';
import type { GroupMembers } from './authorize.js';
import type { Recorder } from '../incident/record.js';

export interface ClickDeps {
  store: RunStore;
  workspace: Inventory['workspace'];
  groupMembers: GroupMembers;
  enqueueStep(runId: string, index: number, by: { userId: string; channelId: string }, tag: string): Promise<void>;
  now: () => Date;
  log: Logger;
  record: Recorder;
  /** Signs an accepted approval (ETCD_MEDIC_HMAC_KEY); the engine verifies it before the step runs. */
  hmacKey: string;
}

/**
 * An Approve or Reject click: checked, recorded atomically (a double click
 * counts once), and handed to a worker. Returns the answer for the clicker.
 */
export async function handleClick(
  decision: 'approve' | 'reject',
  rawValue: unknown,
  who: { userId: string; channelId: string },
  deps: ClickDeps,
): Promise<string> {
  const click = decodeClick(rawValue);
  if (!click) return ':no_entry: That button is not one of this bot\'s current buttons; nothing was done.';
  const run = await deps.store.get(click.runId);
  const d = await decideClick(run, click, decision, who, deps.workspace, deps.groupMembers, deps.now());
  if (!d.ok) {
    deps.log.warn({ run: click.runId, step: click.step, user: who.userId, decision, reason: d.reason }, 'click refused');
    await deps.record(who.channelId, { kind: 'denied', actor: who.userId, runId: run?.runId, incidentId: run?.incidentId, text: `${decision} of step ${click.step + 1} of \`${click.runId}\` refused: ${d.reason}` });
    if (d.reopen) {
      const { changed } = await deps.store.apply(click.runId, { kind: 'reopen', step: click.step, hash: click.hash }, deps.now());
      if (changed) await deps.enqueueStep(click.runId, click.step, who, `reopen-${run!.gate!.round}`);
    }
    return `:no_entry: Not ${decision === 'approve' ? 'approved' : 'rejected'}: ${d.reason}.`;
  }

  if (decision === 'reject') {
    const { changed } = await deps.store.apply(click.runId, { kind: 'stop', how: 'reject', by: who.userId }, deps.now());
    if (!changed) return ':information_source: This run is already stopping.';
    await deps.enqueueStep(click.runId, run!.current, who, 'stop');
    deps.log.info({ run: click.runId, step: click.step, user: who.userId }, 'run rejected');
    await deps.record(who.channelId, { kind: 'rejection', actor: who.userId, runId: click.runId, incidentId: run!.incidentId, text: `rejected step ${click.step + 1} of \`${click.runId}\` (plan ${run!.planHash.slice(0, 12)}, gate ${click.hash.slice(0, 12)})` });
    return `:no_entry_sign: Rejected step ${click.step + 1} of run \`${click.runId}\`: the run stops and nothing more is done.`;
  }

  // The plan must still be the one signed when it was stored: a requester swapped in Redis (so that
  // they may approve their own plan), steps or incident rewritten, are not approved. The engine checks again.
  const plan = planProblem(deps.hmacKey, run!);
  if (plan) {
    deps.log.warn({ run: click.runId, step: click.step, user: who.userId, reason: plan }, 'approval of a plan that does not verify refused');
    await deps.record(who.channelId, { kind: 'denied', actor: who.userId, runId: click.runId, incidentId: run!.incidentId, text: `approve of step ${click.step + 1} of \`${click.runId}\` refused: ${plan}` });
    return `:no_entry: Not approved: ${plan}. Nothing was approved; \`/etcd cancel ${click.runId}\` and plan again.`;
  }
  // The approval is signed with the key only bot and workers hold: one written into Redis by hand does not verify.
  const approvedAt = deps.now();
  const sig = signApproval(deps.hmacKey, { runId: click.runId, step: click.step, gateHash: click.hash, approver: who.userId, at: approvedAt.toISOString() });
  const { changed, run: after, refused } = await deps.store.apply(click.runId, { kind: 'approve', step: click.step, hash: click.hash, by: who.userId, sig }, approvedAt);
  if (!changed) {
    const by = after.records[click.step]?.approvedBy;
    if (by) return `:information_source: Step ${click.step + 1} was already approved by <@${by}>; it runs once.`;
    return `:no_entry: Not approved: ${refused ?? 'the run changed meanwhile'}.`;
  }
  await deps.enqueueStep(click.runId, click.step, who, `approved-${click.hash.slice(0, 12)}`);
  deps.log.info({ run: click.runId, step: click.step, user: who.userId, gate: click.hash }, 'step approved');
  await deps.record(who.channelId, { kind: 'approval', actor: who.userId, runId: click.runId, incidentId: after.incidentId, text: `approved step ${click.step + 1} (${after.steps[click.step]!.title}) of \`${click.runId}\` (plan ${after.planHash.slice(0, 12)}, gate ${click.hash.slice(0, 12)})` });
  return `:white_check_mark: Approved step ${click.step + 1} of run \`${click.runId}\` (gate ${click.hash.slice(0, 12)}). It runs once the live cluster is confirmed unchanged.`;
}
