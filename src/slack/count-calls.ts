import { WebClient } from '@slack/web-api';
import { slackErrors, slackRetries } from '../metrics/registry.js';

/** Counts a Web API call that failed for good (its retries spent), by method and Slack's error code. */
export function countSlackError(method: string, err: unknown): void {
  const e = err as { code?: string; data?: { error?: string } };
  slackErrors.inc({ method, error: e.data?.error ?? e.code ?? 'unknown' });
}

/**
 * A Web API client whose calls that fail for good are counted. Every method of
 * the client (chat.postMessage, …) is bound to `apiCall` when the client is
 * made, so overriding it here, in a subclass, sees them all.
 */
export class CountedWebClient extends WebClient {
  override async apiCall(...args: Parameters<WebClient['apiCall']>): ReturnType<WebClient['apiCall']> {
    try {
      return await super.apiCall(...args);
    } catch (err) {
      countSlackError(args[0], err);
      throw err;
    }
  }
}

/** A retry policy's hook that counts each failed attempt that will be tried again. */
export const countRetry = {
  onFailedAttempt: (e: { retriesLeft: number }) => {
    if (e.retriesLeft > 0) slackRetries.inc();
  },
};
