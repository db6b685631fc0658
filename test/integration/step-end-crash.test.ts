import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { connectRedis } from '../../src/queue/redis.js';
import { RunStore } from '../../src/runbook/store.js';
import { approveUntilEnded, asideDirs, WorkerChain } from '../support/crash-workers.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { latest, textOf, threadOf, waitForGate } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
// The fault: the worker kills itself (SIGKILL) once a destructive step's signed end is on the timeline, before the run records the step.
const AFTER_END_MARK = { MEDIC_FAULT_KILL_AT: 'step-ended' };

describe('a worker killed between a destructive step\'s signed end and its record', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;
  let redis: ReturnType<typeof connectRedis>;

  beforeAll(async () => {
    t = await startMedicLab('step-end-crash', 94, { roles: ROLES, botOnly: true });
    redis = connectRedis(t.config.settings.redisUrl);
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/end/k${i}`, `v${i}`]);
  });
  afterAll(async () => {
    await chain?.stop();
    redis?.disconnect();
    await t?.stop();
  });

  it('a replace whose workers die after the end of member-remove and of stop-and-move-aside: each step recorded from the timeline, not refused, not done twice; DONE', async () => {
    await t.lab.corruptMember('m3');
    const asideBefore = asideDirs(t.lab);
    // Worker 0 dies after step 2's end mark (remove m3), worker 1 after step 3's (stop m3, data dir aside); worker 2 finishes.
    chain = new WorkerChain(t.env, [AFTER_END_MARK, AFTER_END_MARK]);
    try {
      const since = t.slack.lastSeq;
      await t.command('replace m3', { user: 'UALICE' });
      const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 60_000, since);
      const ts = plan.ts!;
      const runId = (await waitForGate(t.slack, ts, 1)).blockId.match(/r-[0-9a-f]{8}/)![0];
      const header = await approveUntilEnded(t, ts, 'UBOB', 300_000, () => chain!.output());

      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${textOf(latest(t.slack, ts))}\n${thread}\n${chain.output()}`).toBe('Replace m3 in lab: DONE');
      expect(chain.exits()).toEqual(['SIGKILL', 'SIGKILL', null]);
      for (const n of [2, 3]) {
        expect(thread).toMatch(new RegExp(`:white_check_mark: Step ${n}: [^:]+: ended \\(done\\) at \\S+, as its signed end on the timeline says; its worker stopped before recording it, so it is recorded now and not run again`));
      }
      expect(thread).not.toMatch(/refused to run/);
      // Nothing destructive twice: m3's data dir moved aside once; three voters; every key.
      expect(asideDirs(t.lab).m3!.filter((d) => !asideBefore.m3!.includes(d))).toHaveLength(1);
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
      const { stdout } = await t.lab.etcdctl(['get', '/end/', '--prefix', '--keys-only']);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);

      // On the signed timeline: one start and one end per destructive step, the chain intact; the cluster free.
      const runs = new RunStore(redis, t.config.settings.queuePrefix);
      const run = (await runs.get(runId))!;
      const incidents = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
      const { entries, chain: check } = await incidents.readVerified(run.incidentId!);
      expect(check.ok).toBe(true);
      const marks = entries.filter((e) => e.runId === runId && e.mark).map((e) => `${e.mark!.step + 1}:${e.mark!.what}${e.mark!.outcome ? `:${e.mark!.outcome}` : ''}`);
      expect(marks).toEqual(['2:start', '2:end:done', '3:start', '3:end:done']);
      expect(await runs.lockHolder('lab')).toBeNull();
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);
});
