import type { Inventory } from '../config/schema.js';
import { decideClick } from '../approvals/decide.js';
import { signApproval } from '../approvals/sign.js';
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
    await deps.record(who.channelId, { kind: 'denied', actor: who.userId, runId: run?.runId, text: `${decision} of step ${click.step + 1} of \`${click.runId}\` refused: ${d.reason}` });
    if (d.reopen) {
      const { changed } = await deps.store.update(click.runId, (r) => {
        const rec = r.records[click.step];
        if (!rec || rec.status !== 'awaiting_approval' || r.gate?.hash !== click.hash) return null;
        rec.status = 'pending';
        return r;
      });
      if (changed) await deps.enqueueStep(click.runId, click.step, who, `reopen-${run!.gate!.round}`);
    }
    return `:no_entry: Not ${decision === 'approve' ? 'approved' : 'rejected'}: ${d.reason}.`;
  }

  const at = deps.now().toISOString();
  if (decision === 'reject') {
    const { changed } = await deps.store.update(click.runId, (r) => (r.stopRequest ? null : { ...r, stopRequest: { kind: 'reject', by: who.userId, at } }));
    if (!changed) return ':information_source: This run is already stopping.';
    await deps.enqueueStep(click.runId, run!.current, who, 'stop');
    deps.log.info({ run: click.runId, step: click.step, user: who.userId }, 'run rejected');
    await deps.record(who.channelId, { kind: 'rejection', actor: who.userId, runId: click.runId, text: `rejected step ${click.step + 1} of \`${click.runId}\` (plan ${run!.planHash.slice(0, 12)}, gate ${click.hash.slice(0, 12)})` });
    return `:no_entry_sign: Rejected step ${click.step + 1} of run \`${click.runId}\`: the run stops and nothing more is done.`;
  }

  const { changed, run: after } = await deps.store.update(click.runId, (r) => {
    const rec = r.records[click.step];
    if (!rec || rec.status !== 'awaiting_approval' || r.gate?.hash !== click.hash || r.stopRequest) return null;
    rec.status = 'approved';
    rec.approvedBy = who.userId;
    rec.approvedAt = at;
    rec.approvalSig = signApproval(deps.hmacKey, { runId: r.runId, step: click.step, gateHash: click.hash, approver: who.userId, at });
    return r;
  });
  if (!changed) {
    const by = after.records[click.step]?.approvedBy;
    return `:information_source: Step ${click.step + 1} was already approved${by ? ` by <@${by}>` : ''}; it runs once.`;
  }
  await deps.enqueueStep(click.runId, click.step, who, `approved-${click.hash.slice(0, 12)}`);
  deps.log.info({ run: click.runId, step: click.step, user: who.userId, gate: click.hash }, 'step approved');
  await deps.record(who.channelId, { kind: 'approval', actor: who.userId, runId: click.runId, text: `approved step ${click.step + 1} (${after.steps[click.step]!.title}) of \`${click.runId}\` (plan ${after.planHash.slice(0, 12)}, gate ${click.hash.slice(0, 12)})` });
  return `:white_check_mark: Approved step ${click.step + 1} of run \`${click.runId}\` (gate ${click.hash.slice(0, 12)}). It runs once the live cluster is confirmed unchanged.`;
}
