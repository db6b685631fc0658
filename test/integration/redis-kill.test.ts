import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import { startRedis } from '../../src/lab/redis.js';
import { connectRedis } from '../../src/queue/redis.js';
import { RunStore } from '../../src/runbook/store.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveStep, planReplace, threadOf, waitForRunStatus } from '../support/slack-view.js';

describe('Redis killed (SIGKILL) in the middle of a run, persisted as the README says', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('redis-kill', 62, { roles: { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] }, ownRedis: true });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('loses nothing it acknowledged: every timeline entry and the run survive, and the run ends healthy', async () => {
    await t.command('incident start redis crashes', { user: 'UALICE' });
    const since = t.slack.lastSeq;
    const { ts, runId } = await planReplace(t, 'm3', 'UALICE');
    for (const step of [1, 2]) await approveStep(t, ts, step, 'UBOB');

    // The fault: Redis is killed with SIGKILL (no chance to write anything on the way out) while
    // the worker is in the middle of the run's unattended steps.
    await t.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.thread_ts === ts && /^:white_check_mark: Step 3:/.test(String(r.body.text)), 60_000, since);
    await t.redis!.kill();
    // What the thread showed before the kill: each of these lines was written to the timeline (and
    // acknowledged by Redis) before it was posted.
    const shownBeforeKill = threadOf(t.slack, ts);
    expect(shownBeforeKill.join('\n'), 'Redis was killed mid-run, not after it').not.toContain('finished: every step done');
    const port = t.redis!.port;
    t.redis = await startRedis(join(t.lab.opts.root, 'redis'), port);
    await waitFor('the bot to see Redis again', async () => (await fetch(t.eventsUrl.replace('/slack/events', '/healthz'))).status === 200, 30_000, 200);

    await waitForRunStatus(t.slack, ts, 'DONE', 120_000);
    const redis = connectRedis(t.redis.url);
    const incidents = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
    const inc = (await incidents.current('CINCIDENT'))!;
    const timeline = (await incidents.entries(inc.id)).map((e) => e.text);
    for (const line of shownBeforeKill) expect(timeline, 'a thread line shown before the kill is on the timeline').toContain(line);
    for (const line of threadOf(t.slack, ts)) expect(timeline).toContain(line);
    expect(await incidents.verify(inc.id)).toMatchObject({ ok: true });
    const run = (await new RunStore(redis, t.config.settings.queuePrefix).get(runId))!;
    expect(run.status).toBe('done');
    expect(run.records.map((r) => r.status).every((s) => s === 'done' || s === 'skipped')).toBe(true);
    expect(run.records[1]!.approvedBy).toBe('UBOB');
    expect(run.records[2]!.approvedBy).toBe('UBOB');
    expect((await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner)).toHaveLength(3);
    redis.disconnect();
  });
});
