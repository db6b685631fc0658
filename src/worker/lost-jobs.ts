import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';

/** BullMQ's reason for a job it failed because the workers that took it kept dying under it. */
export const STALLED_OUT = 'job stalled more than allowable limit';

/** Failed jobs older than this are not told about: after a long outage nobody waits for those answers any more. */
const RECENT_MS = 60 * 60_000;

export interface LostJobDeps {
  queue: Queue<JobEnvelope>;
  redis: Redis;
  prefix: string;
  /** This worker's ID: the claim on each job names it. */
  owner: string;
  /** How a failed job is told (tellJobFailed, with the worker's context). */
  tell(env: JobEnvelope, err: Error, tries: { attempt: number; attempts: number }): Promise<void>;
  log: Logger;
  now?: () => Date;
}

/**
 * A job whose worker died under it (killed, out of memory) is handed to another
 * worker; after a few such deaths BullMQ fails it without any worker running it,
 * so no handler and no tellJobFailed in the worker's catch ever sees it. This
 * finds those jobs among the failed ones and has their requester told, once
 * whichever worker looks first (a claim in Redis, kept longer than BullMQ keeps
 * the failed job). Step jobs are left to the sweeper, which ends their run and
 * says why in its thread. Returns the IDs of the jobs it told about.
 */
export async function tellLostJobs(deps: LostJobDeps): Promise<string[]> {
  const now = (deps.now ?? (() => new Date()))().getTime();
  const told: string[] = [];
  for (const job of await deps.queue.getJobs(['failed'], 0, 199)) {
    if (!job?.id || job.failedReason !== STALLED_OUT) continue;
    const env = job.data;
    if (!env?.request || env.request.name === 'step') continue;
    if (job.finishedOn && now - job.finishedOn > RECENT_MS) continue;
    const claim = `${deps.prefix}:lost-job-told:${job.id}`;
    const claimed = await deps.redis.set(claim, deps.owner, 'PX', 48 * 3600_000, 'NX');
    if (claimed !== 'OK') continue;
    const times = Math.max(1, job.stalledCounter ?? 1);
    const err = new Error(`the worker running it stopped (killed, or out of memory) ${times === 1 ? 'while on it' : `${times} times while on it`}, so it was given up`);
    try {
      await deps.tell(env, err, { attempt: 1, attempts: 1 });
      told.push(job.id);
    } catch (e) {
      // Given back: the next pass (this worker's or another's) tries again.
      await deps.redis.del(claim).catch(() => undefined);
      deps.log.warn({ job: job.id, err: (e as Error).message }, 'could not tell the requester of a job that stalled out; will try again');
    }
  }
  return told;
}

/** `tellLostJobs` every `everyMs`, until stopped. */
export function startLostJobWatch(deps: LostJobDeps, everyMs: number): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => tellLostJobs(deps)).catch((err: Error) => deps.log.warn({ err: err.message }, 'looking for stalled-out jobs failed; next pass retries'));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running.catch(() => undefined);
    },
  };
}
