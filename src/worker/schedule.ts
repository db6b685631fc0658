import type { Queue } from 'bullmq';
import type { Inventory } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';
import type { WatchStore } from './watch-store.js';

/**
 * Removes the schedulers of one kind ("backup-…", "watch-…") that the inventory
 * no longer asks for, a cluster dropped from it included: a scheduler lives in
 * Redis, not in the inventory, and would otherwise tick for ever. Returns the
 * clusters whose scheduler went.
 */
async function dropStale(queue: Queue<JobEnvelope>, kind: 'backup' | 'watch', keep: Set<string>, log: Logger): Promise<string[]> {
  const head = `${kind}-`;
  const gone: string[] = [];
  for (const s of await queue.getJobSchedulers(0, -1, true)) {
    if (!s.key.startsWith(head) || keep.has(s.key)) continue;
    await queue.removeJobScheduler(s.key);
    gone.push(s.key);
    log.info({ scheduler: s.key }, `${kind} schedule removed: the inventory no longer asks for it`);
  }
  if (gone.length) {
    // BullMQ takes the scheduler's delayed job with it, but not one already waiting (an `every` scheduler's first).
    const dropped = new Set(gone);
    for (const job of await queue.getJobs(['wait', 'delayed', 'prioritized'])) {
      const of = /^repeat:(.+):\d+$/.exec(job?.id ?? '')?.[1];
      if (of && dropped.has(of)) await job.remove().catch(() => undefined);
    }
  }
  return gone.map((k) => k.slice(head.length));
}

/**
 * Scheduled backups: one BullMQ job scheduler per cluster, upserted at start
 * (idempotent, so every worker may do it), removed when the inventory has none
 * or no longer names the cluster.
 */
export async function scheduleBackups(queue: Queue<JobEnvelope>, inventory: Inventory, log: Logger): Promise<void> {
  const { schedule, channel } = inventory.backups;
  const keep = new Set(schedule ? inventory.clusters.map((c) => `backup-${c.name}`) : []);
  await dropStale(queue, 'backup', keep, log);
  if (!schedule) return;
  for (const c of inventory.clusters) {
    const id = `backup-${c.name}`;
    const env: JobEnvelope = {
      request: { name: 'backup', data: { cluster: c.name, scheduled: true } },
      requestId: id,
      userId: 'schedule',
      channelId: channel ?? '',
      requestedAt: new Date().toISOString(),
    };
    await queue.upsertJobScheduler(id, { pattern: schedule }, { name: 'backup', data: env, opts: { attempts: 1 } });
    log.info({ cluster: c.name, schedule }, 'backup schedule set');
  }
}

/**
 * The proactive watch: one BullMQ job scheduler per watched cluster, so each tick
 * is one job however many workers run; removed for a cluster that has no watch
 * or is no longer in the inventory, and what that watch last posted forgotten
 * (turned on again, it starts afresh). A changed interval replaces the waiting
 * job, so the next look comes within the new interval.
 */
export async function scheduleWatches(queue: Queue<JobEnvelope>, inventory: Inventory, log: Logger, watches?: WatchStore): Promise<void> {
  const watched = inventory.clusters.filter((c) => c.watch);
  const gone = await dropStale(queue, 'watch', new Set(watched.map((c) => `watch-${c.name}`)), log);
  for (const cluster of gone) await watches?.forget(cluster);
  for (const c of watched) {
    const id = `watch-${c.name}`;
    const env: JobEnvelope = {
      request: { name: 'watch', data: { cluster: c.name } },
      requestId: id,
      userId: 'schedule',
      channelId: c.watch!.channel,
      requestedAt: new Date().toISOString(),
    };
    // A watch that keeps failing (the bot not in its channel) fails once a tick: keep the last hundred, not a day of them.
    const kept = { age: 24 * 3600, count: 100 };
    await queue.upsertJobScheduler(id, { every: c.watch!.intervalSeconds * 1000 }, { name: 'watch', data: env, opts: { attempts: 1, removeOnFail: kept, removeOnComplete: kept } });
    log.info({ cluster: c.name, everySeconds: c.watch!.intervalSeconds, channel: c.watch!.channel }, 'status watch set');
  }
}
