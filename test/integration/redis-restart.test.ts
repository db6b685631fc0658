import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import { startRedis } from '../../src/lab/redis.js';
import { connectRedis } from '../../src/queue/redis.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

describe('Redis restarted in the middle of a run', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('redis-restart', 43, { roles: { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] }, ownRedis: true });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('keeps every timeline entry, and the run continues to the end', async () => {
    const redis = connectRedis(t.redis!.url);
    const store = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
    await t.command('incident start redis goes away', { user: 'UALICE' });
    await t.lab.corruptMember('m3');
    const since = t.slack.lastSeq;
    await t.command('replace m3', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
    const g1 = await waitForGate(t.slack, plan.ts!, 1);
    await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: plan.ts!, actionId: 'medic_approve', blockId: g1.blockId, value: g1.approve })).responseUrl);
    const g2 = await waitForGate(t.slack, plan.ts!, 2);

    const inc = (await store.current('CINCIDENT'))!;
    const before = await store.entries(inc.id);
    expect(before.length).toBeGreaterThan(5);

    // The fault: Redis restarts (persistence on) while the run waits for its second approval.
    const port = t.redis!.port;
    await t.redis!.stop();
    t.redis = await startRedis(join(t.lab.opts.root, 'redis'), port);
    await waitFor('the bot to see Redis again', async () => (await fetch(t.eventsUrl.replace('/slack/events', '/readyz'))).status === 200, 30_000, 200);

    await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: plan.ts!, actionId: 'medic_approve', blockId: g2.blockId, value: g2.approve })).responseUrl);
    await waitForRunStatus(t.slack, plan.ts!, 'DONE', 120_000);

    const after = await store.entries(inc.id);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBeGreaterThan(before.length);
    expect(after.some((e) => e.kind === 'approval' && e.text.includes('approved step 3'))).toBe(true);
    expect(await store.verify(inc.id)).toEqual({ ok: true, count: after.length });
    expect(threadOf(t.slack, plan.ts!).join('\n')).toContain('finished: every step done');
    expect((await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner)).toHaveLength(3);
    redis.disconnect();
  });
});
