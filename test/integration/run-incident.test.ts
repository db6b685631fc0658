import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { connectRedis } from '../../src/queue/redis.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, approveStep, planReplace, waitForGate, waitForRunStatus } from '../support/slack-view.js';

describe('a run keeps the incident it started in', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('run-incident', 61, { roles: { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('writes every remaining step to the original incident after that incident is closed mid-run', async () => {
    const redis = connectRedis(t.env.REDIS_URL!);
    const incidents = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
    const say = async (text: string) => answerAt(t.slack, (await t.command(text, { user: 'UALICE' })).responseUrl);
    expect(await say('incident start m3 disk broke')).toMatch(/opened/);
    const inc = (await incidents.current('CINCIDENT'))!;

    const { ts, runId } = await planReplace(t, 'm3', 'UALICE');
    await approveStep(t, ts, 1, 'UBOB');
    await waitForGate(t.slack, ts, 2);

    // Someone closes the incident while the run still has six steps to go.
    expect(await say('incident close')).toMatch(new RegExp(`Incident \`${inc.id}\` closed`));
    expect(await incidents.current('CINCIDENT')).toBeNull();

    await approveStep(t, ts, 2, 'UBOB');
    await waitForRunStatus(t.slack, ts, 'DONE', 120_000);

    const entries = (await incidents.entries(inc.id)).filter((e) => e.runId === runId);
    const closedAt = (await incidents.entries(inc.id)).findIndex((e) => e.text === 'Incident closed');
    const after = (await incidents.entries(inc.id)).slice(closedAt + 1).map((e) => e.text);
    // The approval given after the close, and every step from 3 to 8, started and done, then the end.
    expect(after.some((s) => s.startsWith(`approved step 3 (`))).toBe(true);
    for (const n of [3, 4, 5, 6, 7, 8]) {
      expect(after.some((s) => s.startsWith(`Step ${n} (`) && s.includes('started')), `step ${n} started`).toBe(true);
      expect(after.some((s) => s.startsWith(`:white_check_mark: Step ${n}: `)), `step ${n} done`).toBe(true);
    }
    expect(entries[entries.length - 1]!.text).toBe(`:tada: Run \`${runId}\` finished: every step done.`);
    expect(await incidents.verify(inc.id)).toMatchObject({ ok: true });
    redis.disconnect();
  });
});
