import type { SlackMessage } from '../render/status-message.js';

/** A message as the renderers draw it: a plain-text fallback and Block Kit blocks. */
export type ChatMessage = SlackMessage;

/**
 * Where the answer to one request goes: the channel it was asked in, who asked,
 * and the command's response_url when there is one (a way to answer even where
 * the bot may not post, and the only way to answer one person alone). Job
 * handlers build it from the queue envelope in one place (src/worker/reply-to.ts);
 * the chat never sees a queue envelope.
 */
export interface ReplyTo {
  channel: string;
  /** A Slack user ID, or "schedule" / "worker" for what nobody typed. */
  requester: string;
  responseUrl?: string;
}

/** A file (a postmortem draft) for a channel, or for a thread in it. */
export interface ChatFile {
  channel: string;
  threadTs?: string;
  filename: string;
  title: string;
  content: string;
  comment?: string;
}

/**
 * How workers talk to chat. The Slack poster (src/slack/poster.ts) is the
 * implementation in production; tests use an in-memory one. Every
 * implementation masks secrets (src/secrets/mask.ts) in all it sends, on
 * every method: callers never mask.
 */
export interface Chat {
  /** The answer to a request, in its channel for all to see (through response_url where the bot may not post). */
  answer(to: ReplyTo, msg: ChatMessage): Promise<{ ts?: string; via: 'chat' | 'response_url' }>;
  /** A message in a channel, or in the thread under `threadTs` when given. Returns its ts. */
  post(channel: string, msg: ChatMessage, threadTs?: string): Promise<string | undefined>;
  /** Redraws a message in place. */
  update(channel: string, ts: string, msg: ChatMessage): Promise<void>;
  /**
   * A line only the requester sees. It goes through the request's response_url:
   * without one it reaches nobody and says so (false), and the caller decides
   * whether the channel should hear it instead.
   */
  ephemeral(to: ReplyTo, text: string): Promise<boolean>;
  /** A file into a channel or a thread. */
  upload(file: ChatFile): Promise<void>;
}
