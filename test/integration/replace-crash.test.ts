import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/lab/proc.js';
import { startMain, type MainProcess } from '../support/main-process.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };

describe('a worker killed in the middle of a replace', () => {
  let t: MedicLab;
  const workers: MainProcess[] = [];

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes so that one can die.
    t = await startMedicLab('crash', 35, { roles: ROLES, botOnly: true });
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await t?.stop();
  });

  const worker = (extra: Record<string, string> = {}) => {
    // A short job lock: a dead worker's job is taken over after about 2 s instead of 30.
    const w = startMain('worker', { ...t.env, WORKER_LOCK_MS: '2000', LOG_LEVEL: 'warn', ...extra });
    workers.push(w);
    return w;
  };

  it('resumes on a new worker without a second member remove, and ends healthy', async () => {
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/crash/k${i}`, `v${i}`]);
    await t.lab.corruptMember('m3');
    // The fault: this worker kills itself (SIGKILL) right after member remove, before recording it.
    const doomed = worker({ MEDIC_FAULT_KILL_AFTER: 'member-remove' });

    const since = t.slack.lastSeq;
    await t.command('replace m3', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
    const ts = plan.ts!;
    const gate = await waitForGate(t.slack, ts, 1);
    const clicked = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: gate.blockId, value: gate.approve });
    expect(await answerAt(t.slack, clicked.responseUrl)).toContain('Approved step 2');

    expect((await doomed.exit).signal).toBe('SIGKILL');
    // The remove happened; the run does not know it yet.
    await waitFor('m3 out of the member list', async () => !(await t.lab.memberList()).some((m) => m.name === 'm3'), 10_000);

    worker();
    const gate3 = await waitForGate(t.slack, ts, 2, 1, 60_000);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toContain('Step 2 (Remove m3 from the member list) was interrupted; resuming');
    expect(thread).toMatch(/Step 2: Remove m3 from the member list: member [0-9a-f]+ is no longer in the member list: already removed, nothing done/);
    expect(thread).not.toMatch(/Step 2: Remove m3 from the member list: removed/);

    const c3 = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: gate3.blockId, value: gate3.approve });
    expect(await answerAt(t.slack, c3.responseUrl)).toContain('Approved step 3');
    const done = await waitForRunStatus(t.slack, ts, 'DONE');
    expect(done).toContain(':fast_forward: *2. Remove m3 from the member list*');

    const members = await t.lab.memberList();
    expect(members.filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    const { stdout } = await t.lab.etcdctl(['get', '/crash/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m3').clientUrl]);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);
    expect(textOf(plan)).toContain('Replace m3 in lab');
  });
});
