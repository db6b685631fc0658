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
