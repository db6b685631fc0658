import type { Chat, ChatMessage as SlackMessage, ReplyTo } from '../chat/port.js';
import type { Logger } from '../log.js';

/**
 * The part of the chat port a progressive answer uses: `answer` for the final answer (into the
 * channel, or through response_url where the bot may not post), `post` for the message that will
 * be redrawn (into the channel only: a response_url message has no ts to update), `update`.
 */
export type ProgressChat = Pick<Chat, 'answer' | 'post' | 'update'>;

export interface ProgressiveOptions {
  /** How long the answer may take before what is known so far is posted. */
  graceMs: number;
  /** Progress that comes this close together is drawn once (members that share a deadline run out together). */
  coalesceMs?: number;
  log?: Logger;
}

/**
 * One answer in the channel that shows what is known while the rest is awaited.
 * Nothing is posted during the grace; if the answer is not ready by then, the
 * latest progress is posted, redrawn as more comes in, and finally redrawn with
 * the answer (chat.update of the same ts). Updates go out one at a time, newest
 * state only, so an older progress never lands over the answer. Progress is best
 * effort; the answer is not: if the redraw fails, it is posted anew.
 */
export class ProgressiveMessage {
  private latest: SlackMessage | null = null;
  /** The last progress sent (or on its way): a redraw of the same state is skipped. */
  private drawn: SlackMessage | null = null;
  private grace: NodeJS.Timeout | undefined;
  private coalesce: NodeJS.Timeout | undefined;
  /** The first post, once made: resolves to its ts, or undefined when it failed. */
  private first: Promise<string | undefined> | null = null;
  /** Redraws in flight, one after the other. */
  private chain: Promise<void> = Promise.resolve();
  private finished = false;

  constructor(
    private readonly chat: ProgressChat,
    private readonly to: ReplyTo,
    private readonly opts: ProgressiveOptions,
  ) {
    this.grace = setTimeout(() => this.postFirst(), opts.graceMs);
  }

  /** What is known so far (no verdict). Posted after the grace, then redrawn. */
  show(msg: SlackMessage): void {
    if (this.finished) return;
    this.latest = msg;
    if (!this.first || this.coalesce) return;
    this.coalesce = setTimeout(() => {
      this.coalesce = undefined;
      this.redraw();
    }, this.opts.coalesceMs ?? 50);
  }

  /**
   * The answer is a short, bounded wait away (say, certificate handshakes after every member
   * answered): no progress message is started any more; one already posted stays and is redrawn.
   */
  hold(): void {
    clearTimeout(this.grace);
  }

  /** The answer: redraws the progress message if there is one, else posts it, once. */
  async finish(msg: SlackMessage): Promise<{ ts?: string; updated: boolean }> {
    this.finished = true;
    clearTimeout(this.grace);
    clearTimeout(this.coalesce);
    if (!this.first) return { ...(await this.chat.answer(this.to, msg)), updated: false };
    const ts = await this.first;
    // Let a redraw in flight land first, so that the answer is the last one drawn.
    await this.chain;
    if (ts) {
      try {
        await this.chat.update(this.to.channel, ts, msg);
        return { ts, updated: true };
      } catch (err) {
        this.opts.log?.warn({ err: String(err), ts }, 'could not redraw the progress message with the answer; posting the answer anew');
      }
    }
    return { ...(await this.chat.answer(this.to, msg)), updated: false };
  }

  /**
   * The answer will not come (the job failed): a progress message already posted is redrawn
   * with `msg` rather than left promising a verdict; nothing is posted when there was none.
   */
  async abandon(msg: SlackMessage): Promise<void> {
    this.finished = true;
    clearTimeout(this.grace);
    clearTimeout(this.coalesce);
    if (!this.first) return;
    const ts = await this.first;
    await this.chain;
    if (ts) await this.chat.update(this.to.channel, ts, msg).catch((err) => this.opts.log?.warn({ err: String(err), ts }, 'could not redraw the progress message'));
  }

  private postFirst(): void {
    if (this.finished || !this.latest || this.first) return;
    const msg = this.latest;
    this.drawn = msg;
    this.first = this.chat.post(this.to.channel, msg).catch((err) => {
      // Not in the channel, or Slack down: the answer still goes out through answer() and its response_url fallback.
      this.opts.log?.warn({ err: String(err) }, 'could not post the progress message');
      return undefined;
    });
    // Progress that came while the first post was on its way is drawn right after it (show() queued it).
    this.chain = this.first.then(() => undefined);
  }

  private redraw(): void {
    if (this.finished || !this.first) return;
    this.chain = this.chain.then(async () => {
      const ts = await this.first;
      const msg = this.latest;
      if (!ts || !msg || msg === this.drawn || this.finished) return;
      this.drawn = msg;
      try {
        await this.chat.update(this.to.channel, ts, msg);
      } catch (err) {
        this.opts.log?.warn({ err: String(err), ts }, 'could not redraw the progress message');
      }
    });
  }
}
