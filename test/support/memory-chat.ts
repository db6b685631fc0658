import type { Chat, ChatFile, ChatMessage, ReplyTo } from '../../src/chat/port.js';
import { maskDeep, maskSecrets } from '../../src/secrets/mask.js';

type Method = 'answer' | 'post' | 'update' | 'ephemeral' | 'upload';

/** One thing a worker sent, as the people in the channel would get it. */
export type ChatRecord =
  | { seq: number; kind: 'message'; channel: string; ts: string; threadTs?: string; text: string; blocks: Record<string, unknown>[]; via: 'chat' | 'response_url'; answered?: string }
  | { seq: number; kind: 'update'; channel: string; ts: string; text: string; blocks: Record<string, unknown>[] }
  | { seq: number; kind: 'ephemeral'; channel: string; requester: string; responseUrl: string; text: string }
  | { seq: number; kind: 'upload'; channel: string; threadTs?: string; filename: string; title: string; content: string; comment?: string };

/**
 * The chat port in memory, for unit tests of what workers say. Like the Slack
 * poster it masks secrets in everything it is given before it keeps it (the
 * port's rule), so what a test reads here is what people would read; the Slack
 * poster's own masking is checked in test/unit/slack-poster.test.ts, not here.
 *
 * Like Slack: `ephemeral` needs a response_url; `answer` in a channel the bot is
 * not in (`notIn`) goes through the response_url, or fails without one. A test
 * makes a method fail with `failing`.
 */
export class MemoryChat implements Chat {
  readonly records: ChatRecord[] = [];
  /** Channels the bot is not a member of (Slack answers not_in_channel). */
  readonly notIn = new Set<string>();
  /** The fault: these methods throw this error until removed. */
  readonly failing = new Map<Method, Error>();
  private n = 0;
  private tsN = 0;

  private check(m: Method): void {
    const err = this.failing.get(m);
    if (err) throw err;
  }

  private nextTs(): string {
    return `1800000000.${String(++this.tsN).padStart(6, '0')}`;
  }

  async answer(to: ReplyTo, raw: ChatMessage): Promise<{ ts?: string; via: 'chat' | 'response_url' }> {
    this.check('answer');
    const msg = maskDeep(raw);
    if (this.notIn.has(to.channel)) {
      if (!to.responseUrl) throw Object.assign(new Error('An API error occurred: not_in_channel'), { data: { ok: false, error: 'not_in_channel' } });
      this.records.push({ seq: ++this.n, kind: 'message', channel: to.channel, ts: '', text: msg.text, blocks: msg.blocks, via: 'response_url', answered: to.requester });
      return { via: 'response_url' };
    }
    const ts = this.nextTs();
    this.records.push({ seq: ++this.n, kind: 'message', channel: to.channel, ts, text: msg.text, blocks: msg.blocks, via: 'chat', answered: to.requester });
    return { ts, via: 'chat' };
  }

  async post(channel: string, raw: ChatMessage, threadTs?: string): Promise<string | undefined> {
    this.check('post');
    if (this.notIn.has(channel)) throw Object.assign(new Error('An API error occurred: not_in_channel'), { data: { ok: false, error: 'not_in_channel' } });
    const msg = maskDeep(raw);
    const ts = this.nextTs();
    this.records.push({ seq: ++this.n, kind: 'message', channel, ts, ...(threadTs ? { threadTs } : {}), text: msg.text, blocks: msg.blocks, via: 'chat' });
    return ts;
  }

  async update(channel: string, ts: string, raw: ChatMessage): Promise<void> {
    this.check('update');
    if (!this.records.some((r) => r.kind === 'message' && r.channel === channel && r.ts === ts)) throw Object.assign(new Error('An API error occurred: message_not_found'), { data: { ok: false, error: 'message_not_found' } });
    const msg = maskDeep(raw);
    this.records.push({ seq: ++this.n, kind: 'update', channel, ts, text: msg.text, blocks: msg.blocks });
  }

  async ephemeral(to: ReplyTo, text: string): Promise<boolean> {
    this.check('ephemeral');
    if (!to.responseUrl) return false;
    this.records.push({ seq: ++this.n, kind: 'ephemeral', channel: to.channel, requester: to.requester, responseUrl: to.responseUrl, text: maskSecrets(text) });
    return true;
  }

  async upload(file: ChatFile): Promise<void> {
    this.check('upload');
    const f = maskDeep(file);
    this.records.push({ seq: ++this.n, kind: 'upload', channel: f.channel, ...(f.threadTs ? { threadTs: f.threadTs } : {}), filename: f.filename, title: f.title, content: f.content, ...(f.comment !== undefined ? { comment: f.comment } : {}) });
  }

  // Lookups a test uses.

  /** The channel's top-level messages (not thread replies), each as it looks now (after its updates). */
  channel(channel: string): { ts: string; text: string; blocks: Record<string, unknown>[]; via: 'chat' | 'response_url'; answered?: string }[] {
    return this.records
      .filter((r): r is Extract<ChatRecord, { kind: 'message' }> => r.kind === 'message' && r.channel === channel && !r.threadTs)
      .map((r) => ({ ...this.latest(r), via: r.via, ...(r.answered ? { answered: r.answered } : {}) }));
  }

  /** A message as it looks now: its last update, or as posted. */
  message(channel: string, ts: string): { ts: string; text: string; blocks: Record<string, unknown>[] } {
    const first = this.records.find((r) => r.kind === 'message' && r.channel === channel && r.ts === ts);
    if (!first || first.kind !== 'message') throw new Error(`no message ${ts} in ${channel}; there are: ${this.texts().join(' | ')}`);
    return this.latest(first);
  }

  private latest(r: Extract<ChatRecord, { kind: 'message' }>): { ts: string; text: string; blocks: Record<string, unknown>[] } {
    const last = this.records.filter((u): u is Extract<ChatRecord, { kind: 'update' }> => u.kind === 'update' && u.channel === r.channel && u.ts === r.ts && r.ts !== '').at(-1);
    return { ts: r.ts, text: (last ?? r).text, blocks: (last ?? r).blocks };
  }

  /** The texts of the replies in the thread under `ts`, oldest first. */
  thread(channel: string, ts: string): string[] {
    return this.records.filter((r) => r.kind === 'message' && r.channel === channel && r.threadTs === ts).map((r) => (r as { text: string }).text);
  }

  /** What only `requester` saw (ephemeral lines), oldest first. */
  ephemerals(requester?: string): string[] {
    return this.records.filter((r) => r.kind === 'ephemeral' && (requester === undefined || r.requester === requester)).map((r) => (r as { text: string }).text);
  }

  uploads(): Extract<ChatRecord, { kind: 'upload' }>[] {
    return this.records.filter((r): r is Extract<ChatRecord, { kind: 'upload' }> => r.kind === 'upload');
  }

  /** Every text anyone could read, in the order sent: messages and their blocks, updates, ephemerals, files. */
  texts(): string[] {
    return this.records.map((r) => {
      if (r.kind === 'upload') return [r.title, r.comment ?? '', r.content].join('\n');
      if (r.kind === 'ephemeral') return r.text;
      return [r.text, ...blockTexts(r.blocks)].join('\n');
    });
  }
}

/** The mrkdwn/plain text inside Block Kit blocks (sections, fields, context, headers, buttons). */
export function blockTexts(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(blockTexts);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const own = typeof o.text === 'string' ? [o.text] : [];
    return [...own, ...Object.entries(o).filter(([k]) => k !== 'text' || typeof o.text !== 'string').flatMap(([, v]) => blockTexts(v))];
  }
  return [];
}
