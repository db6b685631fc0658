import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Inventory } from '../config/schema.js';
import { EtcdPool } from '../etcd/pool.js';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';
import { enqueueStep, openQueue, QUEUE_NAME } from '../queue/queue.js';
import type { EngineDeps } from '../runbook/engine.js';
import { RunStore } from '../runbook/store.js';
import { DirectoryBackupStore } from '../backup/store.js';
import { IncidentStore } from '../incident/store.js';
import type { Chat } from '../chat/port.js';
import { viewCluster } from './cluster-view.js';
import type { WorkerContext } from './context.js';
import { leftBehind } from '../steps/index.js';
import { stepExecutors, stepUndo } from './executors.js';
import { startHeartbeat } from './heartbeat.js';
import * as metrics from '../metrics/registry.js';
import { hostsNotReady } from './host-readiness.js';
import { runBackup, runListBackups } from './jobs/backup.js';
import { runImportBackup } from './jobs/backup-import.js';
import { runCancel } from './jobs/cancel.js';
import { runCerts } from './jobs/certs.js';
import { runDrift, runPlanDriftFix } from './jobs/drift.js';
import { runIncident } from './jobs/incident.js';
import { runNodes } from './jobs/nodes.js';
import { runPlanKubeletsRenew } from './jobs/kubelets.js';
import { runPlanReplace } from './jobs/replace.js';
import { runPlanRestoreQuorum } from './jobs/restore-quorum.js';
import { runPlanDefrag } from './jobs/defrag.js';
import { runPlanRestore } from './jobs/restore.js';
import { runStatus } from './jobs/status.js';
import { RunBusy, runStep } from './jobs/step.js';
import { chatRunNotifier } from './run-notifier.js';
import { timelineLedger } from './step-ledger.js';
import { startTimelineMirror } from './timeline-mirror.js';
import { startSweeper } from './sweeper.js';
import { tellJobFailed } from './job-failed.js';
import { startLostJobWatch } from './lost-jobs.js';
import { scheduleBackups, scheduleWatches } from './schedule.js';
import { runWatch } from './jobs/watch.js';
import { WatchStore } from './watch-store.js';
import { watchForStop } from './abort-watcher.js';
import { backupsInUse, sweepPartials } from './backups.js';
import { runCsrDecide, runCsrList } from './jobs/csr.js';
import { CsrReviewStore } from '../csr/review-store.js';
import { startCsrIncidentWatch } from './csr-incident-watch.js';

export interface WorkerDeps {
  inventory: Inventory;
  redis: Redis; // a connection with maxRetriesPerRequest: null
  prefix: string;
  /** Where answers go (the Slack poster in production). */
  chat: Chat;
  log: Logger;
  concurrency: number;
  /** How long a job's lock lasts without renewal: a crashed worker's job is taken over after about this long. */
  lockMs: number;
  /** How often the sweeper looks for runs nobody works on and locks nobody holds. */
  sweepMs?: number;
  /** Signs and checks approvals and the timeline chain (ETCD_MEDIC_HMAC_KEY). */
  hmacKey: string;
  /** Fault injection for tests: kill this process right after this step (`kind` or `kind#n`) acts. */
  killAfter?: string;
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
  const store = new RunStore(deps.redis, deps.prefix);
  const queue = openQueue(deps.redis, deps.prefix);
  const incidents = new IncidentStore(deps.redis, deps.prefix, deps.hmacKey);
  const notifier = chatRunNotifier(deps.chat, store, incidents, log);
  // Retention never prunes a backup that an unfinished run on the cluster names.
  const backups = new DirectoryBackupStore(deps.inventory.backups.dir, { inUse: (cluster) => backupsInUse(store, cluster) });
  // Snapshot files of backups cut off by a worker's death are never trusted; a start is a good time to remove them
  // (only those last written long ago: another worker sharing the store may be streaming one now).
  for (const cluster of deps.inventory.clusters) await sweepPartials(backups, cluster, log);
  // What an ended run puts back before its cluster is free: the same for the engine, the sweeper and a cancel.
  const undoOnEnd = stepUndo(deps.inventory, pool, backups, log, store);
  const ctx: WorkerContext = {
    workerId: id,
    inventory: deps.inventory,
    pool,
    chat: deps.chat,
    store,
    backups,
    incidents,
    notifier,
    hmacKey: deps.hmacKey,
    enqueueStep: async (runId, index, tag) => {
      const run = await store.get(runId);
      await enqueueStep(queue, runId, index, { userId: run?.requestedBy ?? 'worker', channelId: run?.channelId ?? '' }, tag);
    },
    undoOnEnd,
    log,
  };
  const csrDeps = { reviews: new CsrReviewStore(deps.redis, deps.prefix) };
  const watches = new WatchStore(deps.redis, deps.prefix);
  const engine: EngineDeps = {
    store,
    executors: stepExecutors(deps.inventory, pool, backups, log, { chat: deps.chat, reviews: csrDeps.reviews, runs: store, incidents }),
    observe: async (clusterName) => {
      const cluster = deps.inventory.clusters.find((c) => c.name === clusterName);
      if (!cluster) throw new Error(`cluster ${clusterName} is not in this worker's inventory`);
      return (await viewCluster(cluster, pool)).state;
    },
    notify: notifier,
    enqueueStep: ctx.enqueueStep,
    approvalTtlMs: deps.inventory.workspace.approvalTtlMinutes * 60_000,
    hmacKey: deps.hmacKey,
    ledger: timelineLedger(incidents),
    now: () => new Date(),
    log,
    killAfter: deps.killAfter,
    leftBehind,
    // The planning probe again, for every host the steps from this one on touch.
    beforeDestructive: async (run, index) => {
      const cluster = deps.inventory.clusters.find((c) => c.name === run.cluster);
      return cluster ? hostsNotReady(cluster, run.steps, index) : `cluster ${run.cluster} is not in this worker's inventory.`;
    },
    watchStop: (runId) => watchForStop(store, runId),
    undoOnEnd,
  };

  const worker = new Worker<JobEnvelope>(
    QUEUE_NAME,
    async (job: Job<JobEnvelope>) => {
      const env = job.data;
      const jlog = log.child({ job: env.requestId, cmd: env.request.name, user: env.userId, channel: env.channelId });
      const t0 = Date.now();
      const kind = env.request.name;
      if (job.processedOn) metrics.queueWaitSeconds.observe({ kind }, Math.max(0, job.processedOn - job.timestamp) / 1000);
      try {
        let outcome: string;
        switch (env.request.name) {
          case 'status':
            outcome = (await runStatus({ ...env, request: env.request }, { inventory: deps.inventory, pool, chat: deps.chat })).verdict;
            break;
          case 'watch':
            outcome = await runWatch({ ...env, request: env.request }, { inventory: deps.inventory, pool, post: (channel, msg) => deps.chat.post(channel, msg), watches, log: jlog });
            break;
          case 'nodes':
            outcome = await runNodes({ ...env, request: env.request }, { inventory: deps.inventory, pool, chat: deps.chat });
            break;
          case 'plan-replace':
            outcome = await runPlanReplace({ ...env, request: env.request }, ctx);
            break;
          case 'plan-restore-quorum':
            outcome = await runPlanRestoreQuorum({ ...env, request: env.request }, ctx);
            break;
          case 'plan-restore':
            outcome = await runPlanRestore({ ...env, request: env.request }, ctx);
            break;
          case 'plan-defrag':
            outcome = await runPlanDefrag({ ...env, request: env.request }, ctx);
            break;
          case 'step':
            outcome = await runStep({ ...env, request: env.request }, ctx, engine, deps.lockMs);
            break;
          case 'cancel':
            outcome = await runCancel({ ...env, request: env.request }, ctx);
            break;
          case 'backup':
            outcome = await runBackup({ ...env, request: env.request }, ctx);
            break;
          case 'list-backups':
            outcome = await runListBackups({ ...env, request: env.request }, ctx);
            break;
          case 'import-backup':
            outcome = await runImportBackup({ ...env, request: env.request }, ctx);
            break;
          case 'certs':
            outcome = await runCerts({ ...env, request: env.request }, { inventory: deps.inventory, pool, chat: deps.chat });
            break;
          case 'drift':
            outcome = await runDrift({ ...env, request: env.request }, { inventory: deps.inventory, pool, chat: deps.chat });
            break;
          case 'plan-drift-fix':
            outcome = await runPlanDriftFix({ ...env, request: env.request }, ctx);
            break;
          case 'plan-kubelets-renew':
            outcome = await runPlanKubeletsRenew({ ...env, request: env.request }, ctx);
            break;
          case 'incident':
            outcome = await runIncident({ ...env, request: env.request }, ctx);
            break;
          case 'csr':
            outcome = await runCsrList({ ...env, request: env.request }, ctx, csrDeps);
            break;
          case 'csr-decide':
            outcome = await runCsrDecide({ ...env, request: env.request }, ctx, csrDeps);
            break;
          default: {
            const unknown: never = env.request;
            throw new Error(`unknown job ${JSON.stringify(unknown)}`);
          }
        }
        jlog.info({ ms: Date.now() - t0, outcome }, 'job done');
        metrics.jobs.inc({ kind, outcome: 'done' });
        metrics.jobSeconds.observe({ kind }, (Date.now() - t0) / 1000);
        return outcome;
      } catch (err) {
        metrics.jobs.inc({ kind, outcome: err instanceof RunBusy ? 'busy' : 'failed' });
        metrics.jobSeconds.observe({ kind }, (Date.now() - t0) / 1000);
        if (err instanceof RunBusy) jlog.debug(err.message);
        else {
          jlog.error({ err: (err as Error).message }, 'job failed');
          // Whoever asked hears what failed, and the timeline keeps it.
          await tellJobFailed(env, err as Error, { attempt: job.attemptsMade + 1, attempts: job.opts.attempts ?? 1 }, ctx).catch((e: Error) => jlog.warn({ err: e.message }, 'could not tell the requester'));
        }
        throw err;
      }
    },
    {
      connection: deps.redis,
      prefix: deps.prefix,
      concurrency: deps.concurrency,
      autorun: false,
      lockDuration: deps.lockMs,
      stalledInterval: Math.max(1000, Math.floor(deps.lockMs / 2)),
      maxStalledCount: 3,
    },
  );
  worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));
  const sweeper = startSweeper({ store, queue, notify: notifier, enqueueStep: ctx.enqueueStep, leftBehind, undoOnEnd, log, owner: id, everyMs: deps.sweepMs ?? 15_000, now: () => new Date() });
  // A step job that gave up for good: the sweeper ends its run now rather than at its next pass.
  worker.on('failed', (job) => {
    if (job?.data.request.name === 'step' && job.attemptsMade >= (job.opts.attempts ?? 1)) void sweeper.sweep().catch(() => undefined);
  });
  await worker.waitUntilReady();
  await scheduleBackups(queue, deps.inventory, log);
  await scheduleWatches(queue, deps.inventory, log, watches);
  void worker.run();
  const heartbeat = startHeartbeat(deps.redis, deps.prefix, id);
  const mirror = startTimelineMirror(incidents, deps.chat, log, id);
  // A job BullMQ failed because its workers kept dying under it never reached the catch above: its requester is told here.
  const lost = startLostJobWatch({ queue, redis: deps.redis, prefix: deps.prefix, owner: id, tell: (env, err, tries) => tellJobFailed(env, err, tries, ctx), log }, deps.sweepMs ?? 15_000);
  const csrWatch = startCsrIncidentWatch({ inventory: deps.inventory, incidents, reviews: csrDeps.reviews, redis: deps.redis, chat: deps.chat, log, owner: id });
  log.info({ concurrency: deps.concurrency }, 'worker ready');

  return {
    id,
    async close() {
      heartbeat.stop();
      await sweeper.stop();
      await lost.stop();
      await worker.close();
      await mirror.stop();
      await csrWatch.stop();
      await queue.close();
      await pool.close();
      await heartbeat.clear();
      log.info('worker stopped');
    },
  };
}
