import { WebClient, LogLevel } from '@slack/web-api';
import type { Chat, ChatFile, ChatMessage, ReplyTo } from '../chat/port.js';
import type { Logger } from '../log.js';
import { maskDeep, maskSecrets } from '../secrets/mask.js';
import { CountedWebClient, countRetry } from './count-calls.js';

/**
 * Every Web API call is bounded: a request gives up after `timeout` ms, and
 * is retried a bounded number of times with backoff, so a Slack outage delays
 * a worker's job by about a minute at most instead of holding it forever.
 */
export const WORKER_WEB_API = { timeout: 10_000, retryConfig: { retries: 5, factor: 2, minTimeout: 200, maxTimeout: 5000 } };

/** The bot's own calls (a group lookup before an ack) must answer fast or fail. */
export const BOT_WEB_API = { timeout: 2_500, retryConfig: { retries: 2, factor: 2, minTimeout: 100, maxTimeout: 1000, ...countRetry } };

const RESPONSE_URL_TIMEOUT_MS = 10_000;

/**
 * The chat port (src/chat/port.ts) over Slack's Web API: what a worker produced
 * goes to the channel that asked. Every text it sends is masked for secrets
 * first (see src/secrets/mask.ts), on every method. When the bot is not a
 * member of that channel, Slack refuses chat.postMessage; the command's
 * response_url still works there, so the answer is not lost.
 */
export class SlackPoster implements Chat {
  private readonly client: WebClient;

  constructor(
    token: string,
    apiUrl: string | undefined,
    private readonly log: Logger,
    limits: typeof WORKER_WEB_API = WORKER_WEB_API,
  ) {
    this.client = new CountedWebClient(token, { slackApiUrl: apiUrl, logLevel: LogLevel.ERROR, ...limits, retryConfig: { ...limits.retryConfig, ...countRetry } });
  }

  async answer(to: ReplyTo, raw: ChatMessage): Promise<{ ts?: string; via: 'chat' | 'response_url' }> {
    const msg = maskDeep(raw);
    try {
      const res = await this.client.chat.postMessage({ channel: to.channel, text: msg.text, blocks: msg.blocks as never });
      return { ts: res.ts, via: 'chat' };
    } catch (err) {
      const code = (err as { data?: { error?: string } }).data?.error;
      if ((code === 'not_in_channel' || code === 'channel_not_found') && to.responseUrl) {
        this.log.warn({ channel: to.channel, code }, 'bot cannot post in channel; answering through response_url');
        await postToResponseUrl(to.responseUrl, { response_type: 'in_channel', ...msg });
        return { via: 'response_url' };
      }
      throw err;
    }
  }

  async post(channel: string, raw: ChatMessage, threadTs?: string): Promise<string | undefined> {
    const msg = maskDeep(raw);
    const res = await this.client.chat.postMessage({ channel, text: msg.text, blocks: msg.blocks as never, thread_ts: threadTs });
    return res.ts;
  }

  async update(channel: string, ts: string, raw: ChatMessage): Promise<void> {
    const msg = maskDeep(raw);
    await this.client.chat.update({ channel, ts, text: msg.text, blocks: msg.blocks as never });
  }

  async ephemeral(to: ReplyTo, text: string): Promise<boolean> {
    if (!to.responseUrl) return false;
    await postToResponseUrl(to.responseUrl, { response_type: 'ephemeral', text: maskSecrets(text) });
    return true;
  }

  async upload(file: ChatFile): Promise<void> {
    const args = {
      channel_id: file.channel,
      filename: file.filename,
      title: file.title,
      content: file.content,
      ...(file.comment !== undefined ? { initial_comment: file.comment } : {}),
      ...(file.threadTs ? { thread_ts: file.threadTs } : {}),
    };
    await this.client.filesUploadV2(maskDeep(args) as never);
  }
}

export async function postToResponseUrl(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(maskDeep(body)), signal: AbortSignal.timeout(RESPONSE_URL_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`response_url answered ${res.status}`);
}
