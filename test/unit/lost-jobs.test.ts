import { Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { JobEnvelope } from '../../src/queue/jobs.js';
import { enqueue, openQueue, QUEUE_NAME } from '../../src/queue/queue.js';
import { connectRedis } from '../../src/queue/redis.js';
import { tellJobFailed } from '../../src/worker/job-failed.js';
import { STALLED_OUT, tellLostJobs } from '../../src/worker/lost-jobs.js';
import { chatContext } from '../support/chat-context.js';
import { threeMasters } from '../support/fixtures.js';

const { inventory } = threeMasters('{ roles: { approve: ["*"] } }');

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a job whose workers kept dying under it', () => {
  const t = chatContext(inventory);
  const redis = connectRedis(inject('redisUrl'), { forWorker: true });
  const prefix = `unit-lost-${process.pid}`;
  const queue = openQueue(redis, prefix);
  afterAll(async () => {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await redis.quit();
    await t.close();
  });

  it('is failed by BullMQ without any worker catching it: its requester is still told, once, and the timeline keeps it', async () => {
    await t.incidents.open('CLOST', 'm3 down', 'UALICE');
    const env: JobEnvelope = { request: { name: 'plan-replace', data: { cluster: 'prod', target: 'm3', force: false } }, requestId: 'plan-replace-0000dead', userId: 'UALICE', channelId: 'CLOST', responseUrl: 'https://hooks.slack.invalid/lost', requestedAt: new Date().toISOString() };
    await enqueue(queue, env);
    // The fault: the worker that takes the job stops renewing its lock, as a killed process would
    // (force-closed while its handler never returns), and the next worker's stall check gives up on it.
    const dying = new Worker<JobEnvelope>(QUEUE_NAME, () => new Promise(() => undefined), { connection: redis, prefix, autorun: false, lockDuration: 1000, stalledInterval: 300 });
    await dying.waitUntilReady();
    void dying.run();
    await until('the job taken', async () => (await queue.getJob(env.requestId))?.processedOn !== undefined);
    await dying.close(true);
    const checker = new Worker<JobEnvelope>(QUEUE_NAME, async () => 'unused', { connection: redis, prefix, autorun: false, lockDuration: 1000, stalledInterval: 300, maxStalledCount: 0 });
    await checker.waitUntilReady();
    void checker.run();
    try {
      await until('the job failed as stalled out', async () => (await queue.getJob(env.requestId))?.failedReason === STALLED_OUT);
    } finally {
      await checker.close(true);
    }
    // No worker's catch ran: nobody has said anything yet.
    expect(t.chat.records).toEqual([]);

    const tell = (e: JobEnvelope, err: Error, tries: { attempt: number; attempts: number }) => tellJobFailed(e, err, tries, t.ctx);
    const log = t.ctx.log;
    // Slack down at the first look: nothing reaches anyone, and the job is left for the next look.
    for (const m of ['ephemeral', 'post'] as const) t.chat.failing.set(m, new Error('An API error occurred: service_unavailable'));
    expect(await tellLostJobs({ queue, redis, prefix, owner: 'w-1', tell, log })).toEqual([]);
    t.chat.failing.clear();
    expect(t.chat.records).toEqual([]);
    // Two workers look, one after the other: the requester hears it once.
    expect(await tellLostJobs({ queue, redis, prefix, owner: 'w-1', tell, log })).toEqual([env.requestId]);
    expect(await tellLostJobs({ queue, redis, prefix, owner: 'w-2', tell, log })).toEqual([]);
    expect(t.chat.ephemerals('UALICE')).toEqual([expect.stringMatching(/^:x: `\/etcd replace m3` failed: the worker running it stopped \(killed, or out of memory\) .*so it was given up\./)]);
    const entries = await t.incidents.entries((await t.incidents.current('CLOST'))!.id);
    expect(entries.map((e) => e.text)).toContainEqual(expect.stringMatching(/^`\/etcd replace m3` \(asked by <@UALICE>\) failed: the worker running it stopped/));
  });
});
