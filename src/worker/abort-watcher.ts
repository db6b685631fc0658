import type { RunStore } from '../runbook/store.js';

export interface StopWatch {
  /** Fires when the run gets a stop request (cancel or reject); its reason says who asked. */
  signal: AbortSignal;
  stop(): void;
}

/**
 * Watches a run while one of its steps executes, so that `/etcd cancel` cuts a
 * long step (a snapshot stream, a catch-up wait) within about `everyMs` instead
 * of after it. Polling the run keeps it to what the store already has; a
 * failed read is retried at the next tick.
 */
export function watchForStop(runs: RunStore, runId: string, everyMs = 1000): StopWatch {
  const ac = new AbortController();
  let busy = false;
  const timer = setInterval(() => {
    if (busy || ac.signal.aborted) return;
    busy = true;
    runs
      .get(runId)
      .then((run) => {
        const req = run?.stopRequest;
        if (req) ac.abort(new Error(`${req.kind === 'cancel' ? 'cancelled' : 'rejected'} by <@${req.by}> at ${req.at}`));
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, everyMs);
  timer.unref();
  return { signal: ac.signal, stop: () => clearInterval(timer) };
}
