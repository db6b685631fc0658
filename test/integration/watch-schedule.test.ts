import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import { startRedis, type LabRedis } from '../../src/lab/redis.js';
import { createLogger } from '../../src/log.js';
import type { JobEnvelope } from '../../src/queue/jobs.js';
import { openQueue } from '../../src/queue/queue.js';
import { scheduleBackups, scheduleWatches } from '../../src/worker/schedule.js';
import { WatchStore } from '../../src/worker/watch-store.js';

const fp = 'SHA256:' + 'A'.repeat(43);

/** An inventory of the named clusters, each with the given watch (or none), and backups on `schedule` (or none). */
function inventory(clusters: { name: string; watch?: { intervalSeconds: number; channel: string } }[], schedule?: string) {
  const yaml = `workspace: {}
backups: { dir: /backups${schedule ? `, schedule: "${schedule}", channel: CBACKUPS` : ''} }
clusters:
${clusters
  .map(
    (c, i) => `  - name: ${c.name}
    etcd: { endpoints: ["https://127.0.156.${i + 1}:2379"] }
    members:
      - { name: m1, host: 127.0.156.${i + 1}, ssh: { user: root, keyFile: /k, hostKeyFingerprint: ${fp} } }
${c.watch ? `    watch: { intervalSeconds: ${c.watch.intervalSeconds}, channel: ${c.watch.channel} }\n` : ''}`,
  )
  .join('')}`;
  return parseInventory(yaml, 'watch-schedule.yaml');
}

describe('the watch and backup schedules follow the inventory from one start to the next', () => {
  let dir: string;
  let redisServer: LabRedis;
  let redis: Redis;
  let queue: Queue<JobEnvelope>;
  const prefix = `wsched-${process.pid}`;
  const logs: string[] = [];
  const log = createLogger(
    'info',
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'medic-watch-schedule-'));
    redisServer = await startRedis(join(dir, 'redis'));
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    queue = openQueue(redis, prefix);
  }, 30_000);
  afterAll(async () => {
    await queue?.close();
    redis?.disconnect();
    await redisServer?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const schedulers = async () => (await queue.getJobSchedulers(0, -1, true)).map((s) => [s.key, s.every ?? s.pattern]).sort();
  /** The next job each scheduler has waiting, by scheduler: when it runs, from now. */
  async function nextRuns(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const j of await queue.getJobs(['delayed', 'wait'])) {
      const key = /^repeat:(.+):\d+$/.exec(j.id ?? '')?.[1];
      if (key) out.set(key, j.timestamp + (j.delay ?? 0) - Date.now());
    }
    return out;
  }

  it('a cluster dropped from the inventory loses its watch and backup schedulers and their next jobs; an interval change takes effect at once', async () => {
    const watches = new WatchStore(redis, prefix);
    // Yesterday's inventory: lab and old both watched hourly, both backed up.
    const before = inventory(
      [
        { name: 'lab', watch: { intervalSeconds: 3600, channel: 'CWATCH' } },
        { name: 'old', watch: { intervalSeconds: 3600, channel: 'CWATCH' } },
      ],
      '0 */6 * * *',
    );
    await scheduleBackups(queue, before, log);
    await scheduleWatches(queue, before, log, watches);
    expect(await schedulers()).toEqual([
      ['backup-lab', '0 */6 * * *'],
      ['backup-old', '0 */6 * * *'],
      ['watch-lab', 3_600_000],
      ['watch-old', 3_600_000],
    ]);
    // The watch of old had posted a DEGRADED state once.
    await watches.swap('old', 'CWATCH', { fingerprint: 'f-degraded', state: 's' });

    // Today's: old is gone from the inventory, lab is watched every 5 s, backups are off.
    const after = inventory([{ name: 'lab', watch: { intervalSeconds: 5, channel: 'CWATCH' } }]);
    await scheduleBackups(queue, after, log);
    await scheduleWatches(queue, after, log, watches);
    expect(await schedulers()).toEqual([['watch-lab', 5000]]);
    const next = await nextRuns();
    // No job left of a scheduler that is gone: nothing looks at a cluster nobody inventories any more.
    expect([...next.keys()].sort()).toEqual(['watch-lab']);
    // The next look of lab comes within the new interval, not an hour after the old one.
    expect(next.get('watch-lab')!).toBeLessThanOrEqual(5000);
    // A watch failing every tick (the bot not in its channel) keeps the last hundred failures in Redis, not a day of them.
    const lab = (await queue.getJobSchedulers(0, -1, true)).find((s) => s.key === 'watch-lab')!;
    expect(lab.template?.opts).toMatchObject({ attempts: 1, removeOnFail: { count: 100 } });
    // What the dropped watch had posted is forgotten: if old comes back, its first look starts afresh.
    expect(await redis.keys(`${prefix}:watch:old*`)).toEqual([]);
    expect(logs.join('')).toContain('"scheduler":"watch-old"');
  });

  it('a watch moved to another channel starts afresh there: the new channel hears of a fault the old one was told', async () => {
    const watches = new WatchStore(redis, prefix);
    const degraded = { fingerprint: 'f-degraded', state: 's' };
    expect((await watches.swap('lab', 'CWATCH', degraded)).changed).toBe(true);
    expect((await watches.swap('lab', 'CWATCH', degraded)).changed).toBe(false);
    // The inventory now names CNEWWATCH: the same state is news there.
    const moved = await watches.swap('lab', 'CNEWWATCH', degraded);
    expect(moved).toEqual({ changed: true, prev: null });
  });
});
