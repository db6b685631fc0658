import type { ReplyTo } from '../chat/port.js';
import type { JobEnvelope } from '../queue/jobs.js';

/** The one place a queue envelope becomes where its answer goes: the chat layer never sees the envelope. */
export function replyTo(env: Pick<JobEnvelope, 'channelId' | 'userId' | 'responseUrl'>): ReplyTo {
  return { channel: env.channelId, requester: env.userId, ...(env.responseUrl ? { responseUrl: env.responseUrl } : {}) };
}
