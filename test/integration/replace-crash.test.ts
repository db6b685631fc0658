import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepKind } from '../../src/runbook/types.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { startWorker, type MainProcess } from '../support/main-process.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { latest, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };

// Every step of the replace runbook, in order: the worker dies right after each one acts.
const STEPS: StepKind[] = ['snapshot', 'member-remove', 'stop-and-move-aside', 'member-add-learner', 'write-manifest', 'wait-caught-up', 'promote', 'verify'];

describe('a worker killed at each step boundary of a replace', () => {
  let t: MedicLab;
  const workers: MainProcess[] = [];

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes so that one can die.
    t = await startMedicLab('crash', 35, { roles: ROLES, botOnly: true });
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/crash/k${i}`, `v${i}`]);
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await t?.stop();
  });

  const worker = (extra: Record<string, string> = {}) => {
    // A short job lock: a dead worker's job is taken over after about 2 s instead of 30.
    const w = startWorker({ ...t.env, WORKER_LOCK_MS: '2000', LOG_LEVEL: 'warn', ...extra });
    workers.push(w);
    return w;
  };

  it.each(STEPS)('killed right after %s: resumed by another worker, nothing destructive done twice, healthy at the end', async (kind) => {
    await t.lab.corruptMember('m3');
    // The fault: this worker kills itself (SIGKILL) right after the step acts, before recording it.
    const doomed = worker({ MEDIC_FAULT_KILL_AFTER: kind });
    let rescuer: MainProcess | null = null;
    let ending = false;
    void doomed.exit.then(() => {
      if (!ending) rescuer = worker();
    });

    try {
      await replaceThroughCrash(kind, doomed, () => rescuer);
    } finally {
      // Whatever happened, no worker of this round may take part in the next one.
      ending = true;
      for (const w of [doomed, rescuer as MainProcess | null]) if (w && w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all([doomed.exit, (rescuer as MainProcess | null)?.exit]);
    }
  });

  async function replaceThroughCrash(kind: StepKind, doomed: MainProcess, rescuerOf: () => MainProcess | null): Promise<void> {
    const since = t.slack.lastSeq;
    await t.command('replace m3', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since).catch((e) => {
      console.log('DEBUG records', JSON.stringify(t.slack.records).slice(0, 2000));
      for (const w of workers) console.log('DEBUG worker', w.child.pid, w.child.exitCode, w.child.signalCode, w.out.join('').slice(-3000));
      console.log('DEBUG logs', t.logs.join('').slice(-3000));
      throw e;
    });
    const ts = plan.ts!;

    // Approve each gate as it appears, until the run ends.
    await approveUntilEnded(t, ts, 'UBOB', 120_000);

    const message = textOf(latest(t.slack, ts));
    const thread = threadOf(t.slack, ts).join('\n');
    expect(message.split('\n')[0]).toBe('Replace m3 in lab: DONE');
    expect((await doomed.exit).signal).toBe('SIGKILL');
    expect(rescuerOf()).not.toBeNull();
    const index = STEPS.indexOf(kind) + 1;
    expect(thread).toContain(`Step ${index} (`);
    expect(thread).toMatch(new RegExp(`Step ${index} \\([^)]*\\) was interrupted; resuming`));
    // Each destructive or membership action happened exactly once.
    expect(thread.match(/Step 2: Remove m3 from the member list: removed m3/g) ?? []).toHaveLength(kind === 'member-remove' ? 0 : 1);
    // A step killed after acting reports on resumption that the work was already there.
    expect(thread.match(/data dir moved to/g) ?? []).toHaveLength(kind === 'stop-and-move-aside' ? 0 : 1);
    expect(thread.match(/: added m3 as learner/g) ?? []).toHaveLength(kind === 'member-add-learner' ? 0 : 1);
    expect(thread.match(/^.*wrote .*etcd\.yaml$/gm) ?? []).toHaveLength(kind === 'write-manifest' ? 0 : 1);

    const members = await t.lab.memberList();
    expect(members.filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(members).toHaveLength(3);
    const { stdout } = await t.lab.etcdctl(['get', '/crash/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m3').clientUrl]);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);
  }
});
