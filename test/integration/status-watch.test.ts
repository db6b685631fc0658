import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdPool } from '../../src/etcd/pool.js';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import { waitFor } from '../../src/lab/proc.js';
import { createLogger } from '../../src/log.js';
import { openQueue } from '../../src/queue/queue.js';
import { decodeCommand } from '../../src/render/command-button.js';
import type { SlackMessage } from '../../src/render/status-message.js';
import { startMedic, type Medic } from '../../src/runtime.js';
import { runWatch } from '../../src/worker/jobs/watch.js';
import { WatchStore } from '../../src/worker/watch-store.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { textOf } from '../support/slack-view.js';

const CHANNEL = 'CWATCH';

describe('the proactive status watch', () => {
  let t: MedicLab;
  // A second worker on the same Redis and queue: the watch must still post each change once.
  let second: Medic;
  const secondLogs: string[] = [];

  beforeAll(async () => {
    t = await startMedicLab('status-watch', 145, {
      editInventory: (inv) => {
        inv.clusters[0].watch = { intervalSeconds: 1, channel: CHANNEL };
      },
    });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        secondLogs.push(String(chunk));
        cb();
      },
    });
    second = await startMedic(t.config, createLogger('info', sink), { bot: false, worker: true });
  }, 120_000);
  afterAll(async () => {
    await second?.stop();
    await t?.stop();
  });

  /** Looks the watch finished, on either worker. */
  const looks = () => [...t.logs, ...secondLogs].filter((l) => l.includes('"msg":"job done"') && l.includes('"cmd":"watch"')).length;
  const watchPosts = (since = 0) => t.slack.messages((r: SlackRecord) => r.seq > since && r.kind === 'api' && r.method === 'chat.postMessage' && r.body.channel === CHANNEL);
  /** Waits until the watch has looked `n` more times: what "while nothing changes" means, bounded. */
  async function moreLooks(n: number): Promise<void> {
    const from = looks();
    await waitFor(`${n} more looks of the watch`, () => looks() >= from + n, 30_000, 100);
  }

  it('says nothing about a healthy cluster, look after look; two workers share one schedule', async () => {
    await moreLooks(3);
    expect(watchPosts()).toEqual([]);
    // Each worker set the schedule at its start: it is one scheduler, so one look per tick, not one per worker.
    const redis = new Redis(t.env.REDIS_URL!, { maxRetriesPerRequest: null });
    const queue = openQueue(redis, t.env.QUEUE_PREFIX!);
    try {
      const schedulers = await queue.getJobSchedulers();
      expect(schedulers.filter((s) => s.key.startsWith('watch-')).map((s) => [s.key, s.every])).toEqual([['watch-lab', 1000]]);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });

  it('posts once when a member stops (HEALTHY → DEGRADED, with Replace m3 as a button), then nothing while it stays down; once again when it is back', async () => {
    const since = t.slack.lastSeq;
    await t.lab.stopMember('m3');
    let back = false;
    try {
      const post = await t.slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.postMessage' && r.body.channel === CHANNEL, 30_000, since);
      expect(String(post.body.text)).toMatch(/^Watch: HEALTHY → DEGRADED · new: Replace m3\. etcd lab: DEGRADED/);
      const blocks = post.body.blocks as { type: string; block_id?: string; accessory?: { action_id: string; value: string }; elements?: { text: string }[] }[];
      // Under the header, what changed; then the status as `/etcd status` shows it.
      expect(blocks[1]).toEqual({ type: 'context', elements: [{ type: 'mrkdwn', text: ':eyes: *Watch:* HEALTHY → DEGRADED · new: Replace m3' }] });
      expect(textOf(post)).toContain('*1. Replace m3*\nm3 (');
      const diag = blocks.filter((b) => b.block_id?.startsWith('diagnosis-'));
      expect(diag.map((b) => decodeCommand(b.accessory?.value))).toEqual([{ command: 'replace', args: ['m3', 'lab'] }]);
      expect(diag[0]!.accessory!.action_id).toBe('medic_command');

      // Nothing changes: the watch keeps looking and posts nothing more.
      await moreLooks(4);
      expect(watchPosts(since)).toHaveLength(1);

      const before = t.slack.lastSeq;
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
      back = true;
      const healed = await t.slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.postMessage' && r.body.channel === CHANNEL, 30_000, before);
      expect(String(healed.body.text)).toMatch(/^Watch: DEGRADED → HEALTHY · no longer: Replace m3\./);
      await moreLooks(4);
      expect(watchPosts(before)).toHaveLength(1);
    } finally {
      if (!back) {
        await t.lab.startMember('m3');
        await t.lab.waitHealthy();
      }
    }
  }, 120_000);

  it('two workers looking at the same moment post the same change once', async () => {
    const redis = new Redis(t.env.REDIS_URL!, { maxRetriesPerRequest: null });
    const pools = [new EtcdPool(), new EtcdPool()];
    const posted: SlackMessage[] = [];
    // A state of its own (another prefix), so the scheduled watch of this lab does not take part.
    const watches = new WatchStore(redis, `${t.env.QUEUE_PREFIX}-race`);
    const env = { request: { name: 'watch' as const, data: { cluster: 'lab' } }, requestId: 'watch-lab', userId: 'schedule', channelId: CHANNEL, requestedAt: new Date().toISOString() };
    const deps = (pool: EtcdPool) => ({ inventory: t.config.inventory, pool, post: async (_channel: string, msg: SlackMessage) => void posted.push(msg), watches, log: createLogger('silent') });
    await t.lab.stopMember('m2');
    try {
      const outcomes = await Promise.all(pools.map((p) => runWatch(env, deps(p))));
      expect(posted).toHaveLength(1);
      expect(outcomes.filter((o) => o.startsWith('posted')).length).toBe(1);
      expect(outcomes.filter((o) => o.startsWith('unchanged')).length).toBe(1);
      // Looked at again, the same state is not posted a second time.
      expect(await runWatch(env, deps(pools[0]!))).toBe('unchanged DEGRADED');
      expect(posted).toHaveLength(1);

      // Fault: Slack refuses the post. The change is not marked as told: the next look posts it.
      const fresh = new WatchStore(redis, `${t.env.QUEUE_PREFIX}-refused`);
      const refusing = { ...deps(pools[0]!), watches: fresh, post: async () => Promise.reject(new Error('slack said no')) };
      await expect(runWatch(env, refusing)).rejects.toThrow('slack said no');
      expect(await runWatch(env, { ...deps(pools[1]!), watches: fresh })).toMatch(/^posted: first look: DEGRADED/);
      expect(posted).toHaveLength(2);
    } finally {
      await t.lab.startMember('m2');
      await t.lab.waitHealthy();
      for (const p of pools) await p.close();
      redis.disconnect();
    }
  }, 60_000);
});
