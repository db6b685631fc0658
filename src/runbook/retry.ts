/**
 * Retries `fn` with exponential backoff while `retryable(err)` says the failure
 * is the passing kind (etcd's "unhealthy cluster" after a leader change, a
 * learner not yet in sync), for at most `maxMs` in all.
 */
export async function retryWhile<T>(
  fn: () => Promise<T>,
  retryable: (err: Error) => boolean,
  opts: { maxMs: number; startMs?: number; capMs?: number; onRetry?: (err: Error, attempt: number) => void },
): Promise<T> {
  const deadline = Date.now() + opts.maxMs;
  let wait = opts.startMs ?? 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = err as Error;
      if (!retryable(e) || Date.now() + wait > deadline) throw e;
      opts.onRetry?.(e, attempt);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, opts.capMs ?? 5000);
    }
  }
}
