import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Inventory } from '../config/schema.js';
import { EtcdPool } from '../etcd/pool.js';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';
import { QUEUE_NAME } from '../queue/queue.js';
import type { SlackPoster } from '../slack/poster.js';
import { runStatus } from './jobs/status.js';
import { startHeartbeat } from './heartbeat.js';

export interface WorkerDeps {
  inventory: Inventory;
  redis: Redis; // a connection with maxRetriesPerRequest: null
  prefix: string;
  slack: SlackPoster;
  log: Logger;
  concurrency: number;
}

export interface MedicWorker {
  id: string;
  /** Finishes the job in hand (or lets BullMQ hand it to another worker) and disconnects. */
  close(): Promise<void>;
}

export async function startWorker(deps: WorkerDeps): Promise<MedicWorker> {
  const id = `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const pool = new EtcdPool();
  const log = deps.log.child({ worker: id });

  const worker = new Worker<JobEnvelope>(
    QUEUE_NAME,
    async (job: Job<JobEnvelope>) => {
      const env = job.data;
      const jlog = log.child({ job: env.requestId, cmd: env.request.name, user: env.userId, channel: env.channelId });
      const t0 = Date.now();
      jlog.info('job started');
      try {
        switch (env.request.name) {
          case 'status': {
            const report = await runStatus(env, { inventory: deps.inventory, pool, slack: deps.slack });
            jlog.info({ verdict: report.verdict, ms: Date.now() - t0 }, 'job done');
            return { verdict: report.verdict };
          }
          default: {
            const unknown: never = env.request.name;
            throw new Error(`unknown job ${String(unknown)}`);
          }
        }
      } catch (err) {
        jlog.error({ err: (err as Error).message }, 'job failed');
        throw err;
      }
    },
    { connection: deps.redis, prefix: deps.prefix, concurrency: deps.concurrency, autorun: false },
  );
  worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));
  await worker.waitUntilReady();
  void worker.run();
  const heartbeat = startHeartbeat(deps.redis, deps.prefix, id);
  log.info({ concurrency: deps.concurrency }, 'worker ready');

  return {
    id,
    async close() {
      heartbeat.stop();
      await worker.close();
      await pool.close();
      await heartbeat.clear();
      log.info('worker stopped');
    },
  };
}
