import { randomBytes } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';
import type { JobEnvelope, JobRequest } from './jobs.js';

export const QUEUE_NAME = 'medic';

/** A short, readable ID that the ack names and the logs carry: "status-3f9a1c2e". */
export function newRequestId(req: JobRequest): string {
  return `${req.name}-${randomBytes(4).toString('hex')}`;
}

export function openQueue(connection: ConnectionOptions, prefix: string): Queue<JobEnvelope> {
  return new Queue<JobEnvelope>(QUEUE_NAME, {
    connection,
    prefix,
    defaultJobOptions: {
      // A status answer that arrives minutes late is worse than none: no retries.
      attempts: 1,
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 24 * 3600 },
    },
  });
}

/**
 * The job that runs one step of a run. Its ID is derived from the run, the step
 * and a tag, so the same step is never queued twice for the same reason.
 * A step job retries while another job of the same run holds the run's lease.
 */
export async function enqueueStep(queue: Queue<JobEnvelope>, runId: string, index: number, by: { userId: string; channelId: string }, tag?: string): Promise<void> {
  const env: JobEnvelope = {
    request: { name: 'step', data: { runId, index } },
    requestId: `${runId}-s${index}${tag ? `-${tag}` : ''}`,
    userId: by.userId,
    channelId: by.channelId,
    requestedAt: new Date().toISOString(),
  };
  await queue.add('step', env, { jobId: env.requestId, attempts: 600, backoff: { type: 'fixed', delay: 500 } });
}

export async function enqueue(queue: Queue<JobEnvelope>, env: JobEnvelope, timeoutMs = 5000): Promise<void> {
  // The request ID is the job ID, so a resent request cannot run twice.
  // Bounded: with Redis down ioredis would queue the command and the user would wait for nothing.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not accept the job within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([queue.add(env.request.name, env, { jobId: env.requestId }), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
