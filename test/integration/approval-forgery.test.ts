import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import type { JobEnvelope } from '../../src/queue/jobs.js';
import { enqueueStep, QUEUE_NAME } from '../../src/queue/queue.js';
import { connectRedis } from '../../src/queue/redis.js';
import { RunStore } from '../../src/runbook/store.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };

describe('an approval written into Redis instead of clicked', () => {
  let t: MedicLab;
  let redis: ReturnType<typeof connectRedis>;

  beforeAll(async () => {
    t = await startMedicLab('forgery', 71, { roles: ROLES });
    redis = connectRedis(t.config.settings.redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  it('is refused right before the destructive step runs, the run stops, and the timeline says so', async () => {
    await t.command('incident start forged approvals', { user: 'UALICE' });
    await t.lab.corruptMember('m3');
    const since = t.slack.lastSeq;
    await t.command('replace m3', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
    await waitForGate(t.slack, plan.ts!, 1);
    const prefix = t.config.settings.queuePrefix;
    const runId = (await redis.keys(`${prefix}:run:*`))[0]!.split(':').pop()!;

    // The fault: someone who can write Redis (but has no HMAC key) marks step 2 approved
    // by an approver and queues its job, as a click would have.
    const runs = new RunStore(redis, prefix);
    await runs.update(runId, (r) => {
      const rec = r.records[1]!;
      rec.status = 'approved';
      rec.approvedBy = 'UBOB';
      rec.approvedAt = new Date().toISOString();
      return r;
    });
    const queue = new Queue<JobEnvelope>(QUEUE_NAME, { connection: redis, prefix });
    await enqueueStep(queue, runId, 1, { userId: 'UBOB', channelId: 'CINCIDENT' }, 'forged');
    await queue.close();

    const failed = await waitForRunStatus(t.slack, plan.ts!, 'FAILED', 60_000);
    expect(failed).toContain('refused to run: the approval of step 2 carries no signature');
    const thread = threadOf(t.slack, plan.ts!).join('\n');
    expect(thread).toContain('Nothing was done by this step');
    expect(thread).toContain('Not done: 2. Remove m3 from the member list');
    // Nothing destructive happened: m3 is still a member.
    expect((await t.lab.memberList()).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    // On the record.
    const store = new IncidentStore(redis, prefix, t.config.settings.hmacKey);
    const inc = (await store.current('CINCIDENT'))!;
    const { entries, chain } = await store.readVerified(inc.id);
    expect(entries.some((e) => e.runId === runId && e.text.includes('carries no signature'))).toBe(true);
    expect(chain.ok).toBe(true);
  });
});
