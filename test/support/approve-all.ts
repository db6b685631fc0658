import type { FakeSlack } from '../../src/lab/fake-slack.js';
import { answerAt, latest, textOf, threadOf } from './slack-view.js';

/**
 * `approver` approves each gate of the run as it appears until the run ends;
 * resolves with its header. Unlike approveUntilEnded, a run that ends DONE with
 * a caveat counts as ended (its header then says the caveat after the status).
 */
export async function approveAllUntilEnded(
  t: { slack: FakeSlack; click(p: { user: string; messageTs: string; actionId: string; blockId: string; value: string }): Promise<{ responseUrl: string }> },
  ts: string,
  approver: string,
  timeoutMs: number,
): Promise<string> {
  const clicked = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const msg = latest(t.slack, ts);
    const header = textOf(msg).split('\n')[0]!;
    if (/: (DONE|FAILED|CANCELLED|REJECTED)(:|$)/.test(header)) return header;
    for (const b of (msg.body.blocks as { type: string; block_id?: string; elements?: { action_id?: string; value?: string }[] }[]) ?? []) {
      if (b.type !== 'actions' || !b.block_id?.startsWith('gate-') || clicked.has(b.block_id)) continue;
      clicked.add(b.block_id);
      const approve = b.elements!.find((e) => e.action_id === 'medic_approve')!;
      await answerAt(t.slack, (await t.click({ user: approver, messageTs: ts, actionId: 'medic_approve', blockId: b.block_id, value: approve.value! })).responseUrl);
    }
    if (Date.now() > deadline) throw new Error(`run not ended within ${timeoutMs} ms:\n${textOf(msg)}\n--- thread ---\n${threadOf(t.slack, ts).join('\n')}`);
    await t.slack.waitFor(() => true, 500, t.slack.lastSeq).catch(() => undefined);
  }
}
