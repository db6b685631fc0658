/** Reading the fake Slack the way a person reads the channel: used by tests, the bench and the playground tooling. */
import type { FakeSlack, SlackRecord } from './fake-slack.js';

type Block = { type: string; block_id?: string; text?: { text?: string }; elements?: { action_id?: string; value?: string; text?: { text?: string } }[] };

/** The text a person reads in a message: every block's text, in order. */
export function textOf(r: SlackRecord): string {
  const blocks = (r.body.blocks as Block[] | undefined) ?? [];
  if (!blocks.length) return String(r.body.text ?? '');
  return blocks.map((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text?.text ?? '')].join('\n')).join('\n');
}

/** How a message looks now: the last post or update with that ts. */
export function latest(slack: FakeSlack, ts: string): SlackRecord {
  const all = slack.messages((r) => r.kind === 'api' && (r.method === 'chat.postMessage' || r.method === 'chat.update') && r.ts === ts);
  return all[all.length - 1]!;
}

export interface Buttons {
  blockId: string;
  approve: string;
  reject: string;
  round: number;
}

/** Waits until the plan message shows the Approve/Reject buttons of a step, and returns them. */
export async function waitForGate(slack: FakeSlack, ts: string, step: number, minRound = 1, timeoutMs = 60_000): Promise<Buttons> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const blocks = (latest(slack, ts).body.blocks as Block[]) ?? [];
    const actions = blocks.find((b) => b.type === 'actions' && new RegExp(`^gate-r-[0-9a-f]{8}-${step}-\\d+$`).test(b.block_id ?? ''));
    if (actions) {
      const round = Number(actions.block_id!.split('-').pop());
      if (round >= minRound) {
        const approve = actions.elements!.find((e) => e.action_id === 'medic_approve')!;
        const reject = actions.elements!.find((e) => e.action_id === 'medic_reject')!;
        return { blockId: actions.block_id!, approve: approve.value!, reject: reject.value!, round };
      }
    }
    if (Date.now() > deadline) throw new Error(`no buttons for step ${step + 1} (round ≥ ${minRound}) within ${timeoutMs} ms; message now:\n${textOf(latest(slack, ts))}`);
    await slack.waitFor(() => true, Math.max(1, deadline - Date.now()), slack.lastSeq).catch(() => undefined);
  }
}

/** Waits until the plan message's header says the run ended with `status`. */
export async function waitForRunStatus(slack: FakeSlack, ts: string, status: string, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = textOf(latest(slack, ts));
    if (text.split('\n')[0]!.endsWith(`: ${status}`)) return text;
    // "DONE: etcd healthy, Kubernetes not yet" is an end too (every step done, with a caveat).
    if (/: (FAILED|CANCELLED|REJECTED|DONE)(: [^:]+)?$/.test(text.split('\n')[0]!) && !text.split('\n')[0]!.endsWith(status)) {
      throw new Error(`run ended otherwise than ${status}:\n${text}\n--- thread ---\n${threadOf(slack, ts).join('\n')}`);
    }
    if (Date.now() > deadline) throw new Error(`run not ${status} within ${timeoutMs} ms; message now:\n${text}\n--- thread ---\n${threadOf(slack, ts).join('\n')}`);
    await slack.waitFor(() => true, Math.max(1, deadline - Date.now()), slack.lastSeq).catch(() => undefined);
  }
}

/** Every reply in the message's thread, as text. */
export function threadOf(slack: FakeSlack, ts: string): string[] {
  return slack.messages((r) => r.kind === 'api' && r.method === 'chat.postMessage' && r.body.thread_ts === ts).map(textOf);
}


/** A status message that shows what is known while members are still asked ("etcd lab: checking, waiting for …"): no verdict yet. */
export function isStatusProgress(r: SlackRecord): boolean {
  return /^etcd \S+: checking/.test(String(r.body.text ?? ''));
}

/**
 * The answer to `/etcd status` for `cluster` as the channel ends up showing it: `first` is the message
 * posted (a progress message when members were slow), `final` the same message once it carries the
 * verdict (the post itself, or its redraw by chat.update).
 */
export async function waitForStatusAnswer(slack: FakeSlack, cluster: string, timeoutMs = 20_000, sinceSeq = 0): Promise<{ first: SlackRecord; final: SlackRecord }> {
  const deadline = Date.now() + timeoutMs;
  const first = await slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.postMessage' && String(r.body.text).startsWith(`etcd ${cluster}:`), timeoutMs, sinceSeq);
  if (!isStatusProgress(first)) return { first, final: first };
  const final = await slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.update' && r.ts === first.ts && !isStatusProgress(r), Math.max(1, deadline - Date.now()), first.seq);
  return { first, final };
}

/** A message in `channel` that carries a verdict: a status post, or the redraw of a progress message (not the progress itself). */
export function isStatusVerdictIn(channel: string): (r: SlackRecord) => boolean {
  return (r) => r.kind === 'api' && (r.method === 'chat.postMessage' || r.method === 'chat.update') && r.body.channel === channel && !isStatusProgress(r);
}
