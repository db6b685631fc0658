/** Sleeps, or ends early with "stopped while waiting for <what>" when the run is asked to stop. */
export function pauseOrStop(ms: number, what: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(`stopped while waiting for ${what}`));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error(`stopped while waiting for ${what}`));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
