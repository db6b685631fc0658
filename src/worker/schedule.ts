import type { Queue } from 'bullmq';
import type { Inventory } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';

/**
 * Scheduled backups: one BullMQ job scheduler per cluster, upserted at start
 * (idempotent, so every worker may do it), removed when the inventory has none.
 */
export async function scheduleBackups(queue: Queue<JobEnvelope>, inventory: Inventory, log: Logger): Promise<void> {
  const { schedule, channel } = inventory.backups;
  for (const c of inventory.clusters) {
    const id = `backup-${c.name}`;
    if (!schedule) {
      await queue.removeJobScheduler(id);
      continue;
    }
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
 * is one job however many workers run; removed for a cluster that has no watch.
 */
export async function scheduleWatches(queue: Queue<JobEnvelope>, inventory: Inventory, log: Logger): Promise<void> {
  for (const c of inventory.clusters) {
    const id = `watch-${c.name}`;
    if (!c.watch) {
      await queue.removeJobScheduler(id);
      continue;
    }
    const env: JobEnvelope = {
      request: { name: 'watch', data: { cluster: c.name } },
      requestId: id,
      userId: 'schedule',
      channelId: c.watch.channel,
      requestedAt: new Date().toISOString(),
    };
    await queue.upsertJobScheduler(id, { every: c.watch.intervalSeconds * 1000 }, { name: 'watch', data: env, opts: { attempts: 1 } });
    log.info({ cluster: c.name, everySeconds: c.watch.intervalSeconds, channel: c.watch.channel }, 'status watch set');
  }
}
