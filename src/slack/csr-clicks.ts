import type { App } from '@slack/bolt';
import type { Inventory } from '../config/schema.js';
import type { Recorder } from '../incident/record.js';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';
import { newRequestId } from '../queue/queue.js';
import { CSR_APPROVE_ACTION, CSR_APPROVE_ALL_ACTION, CSR_DENY_ACTION, decodeCsrClick } from '../render/csr-message.js';
import { maskSecrets } from '../secrets/mask.js';
import { authorize, type GroupMembers } from './authorize.js';

export interface CsrClickDeps {
  workspace: Inventory['workspace'];
  groupMembers: GroupMembers;
  enqueue(env: JobEnvelope): Promise<void>;
  record: Recorder;
  log: Logger;
}

type CsrAction = 'approve' | 'deny' | 'approve-all';

/**
 * A click on a CSR button: the payload is checked, the clicker must hold the
 * approve role (approving or denying a certificate is a decision), and the
 * decision is queued for a worker, which talks to the API server and answers
 * the clicker. Returns the answer to give at once, or null when the worker will.
 */
export async function handleCsrClick(action: CsrAction, rawValue: unknown, who: { userId: string; channelId: string; responseUrl?: string }, deps: CsrClickDeps): Promise<string | null> {
  const click = decodeCsrClick(rawValue);
  if (!click || (action === 'approve-all') !== 'all' in click) {
    deps.log.warn({ user: who.userId, action }, 'CSR click with a value this bot did not draw');
    return ':no_entry: That button is not one of this bot\'s current buttons; nothing was done.';
  }
  const decision = action === 'deny' ? 'deny' : 'approve';
  const what = 'all' in click ? 'all CSRs that pass policy' : `CSR ${click.name}`;
  const d = await authorize(deps.workspace, 'approve', who.userId, who.channelId, deps.groupMembers);
  if (!d.ok) {
    deps.log.warn({ user: who.userId, action, review: click.reviewId }, 'CSR click refused');
    await deps.record(who.channelId, { kind: 'denied', actor: who.userId, text: `${decision} of ${what} refused: ${d.reason}` });
    return `:no_entry: Not ${decision === 'approve' ? 'approved' : 'denied'}: ${d.reason}. Nothing was done.`;
  }
  const request = { name: 'csr-decide' as const, data: { decision: decision as 'approve' | 'deny', click } };
  const env: JobEnvelope = { request, requestId: newRequestId(request), userId: who.userId, channelId: who.channelId, responseUrl: who.responseUrl, requestedAt: new Date().toISOString() };
  try {
    await deps.enqueue(env);
  } catch (err) {
    deps.log.error({ err: (err as Error).message }, 'could not queue a CSR decision');
    return ':x: The queue (Redis) did not accept the decision; nothing was done. Click again in a moment.';
  }
  deps.log.info({ user: who.userId, action, review: click.reviewId, job: env.requestId }, 'CSR decision queued');
  return null;
}

/** The three CSR buttons on the app: ack at once, then check and queue. */
export function registerCsrActions(app: App, deps: CsrClickDeps): void {
  for (const [actionId, action] of [
    [CSR_APPROVE_ACTION, 'approve'],
    [CSR_DENY_ACTION, 'deny'],
    [CSR_APPROVE_ALL_ACTION, 'approve-all'],
  ] as const) {
    app.action(actionId, async ({ ack, body, action: a, respond }) => {
      await ack();
      const b = body as { user: { id: string }; channel?: { id?: string }; response_url?: string };
      const who = { userId: b.user.id, channelId: b.channel?.id ?? '', responseUrl: b.response_url };
      const text = await handleCsrClick(action, (a as { value?: unknown }).value, who, deps).catch((err: Error) => {
        deps.log.error({ err: err.message }, 'CSR click failed');
        return `:x: The click could not be handled (${err.message.slice(0, 200)}); nothing was done. Try again.`;
      });
      if (text) await respond({ response_type: 'ephemeral', replace_original: false, text: maskSecrets(text) });
    });
  }
}
