import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { verifySnapshot } from '../../src/backup/take.js';
import { waitFor } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveUntilEnded, asideDirs, etcdLogCount, WorkerChain } from '../support/crash-workers.js';
import { answerAt, latest, textOf, threadOf, waitForGate } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
// The fault: the worker kills itself (SIGKILL) once the first chunk of a snapshot stream is on disk.
const MID_SNAPSHOT = { MEDIC_FAULT_KILL_AT: 'mid-snapshot' };

describe('a worker killed in the middle of a step or of its bookkeeping', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;
  let dir: string;

  beforeAll(async () => {
    t = await startMedicLab('mid-step-crash', 77, { roles: ROLES, botOnly: true });
    dir = join(t.config.inventory.backups.dir, 'lab');
    // Enough data that a snapshot is streamed in more than one chunk.
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/mid/k${i}`, 'x'.repeat(100_000)]);
  });
  afterAll(async () => {
    await chain?.stop();
    await t?.stop();
  });

  const partials = () => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.partial')) : []);
  const committed = () => (existsSync(dir) ? readdirSync(dir).filter((f) => /^backup_.+\.json$/.test(f)) : []);

  it('/etcd backup killed mid-stream: another worker takes a whole backup; the partial file is never listed or trusted', async () => {
    chain = new WorkerChain(t.env, [MID_SNAPSHOT]);
    try {
      const before = committed();
      const since = t.slack.lastSeq;
      await t.command('backup', { user: 'UALICE' });
      // At its death the worker had written part of the stream, and committed nothing.
      expect((await chain.workers[0]!.exit).signal).toBe('SIGKILL');
      const torn = partials();
      expect(torn).toHaveLength(1);
      expect(statSync(join(dir, torn[0]!)).size).toBeGreaterThan(0);
      expect(committed()).toEqual(before);

      const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 60_000, since);
      const id = /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*lab\*/.exec(textOf(msg))![1]!;
      const store = new DirectoryBackupStore(t.config.inventory.backups.dir);
      const all = await store.list('lab');
      // Only whole, verified backups are in the store: the torn stream is not one of them.
      expect(all.map((f) => f.id)).toEqual([id]);
      expect(all.map((f) => f.snapshotFile).some((f) => torn.includes(`${f}.partial`) || f.endsWith('.partial'))).toBe(false);
      const v = await verifySnapshot(store.snapshotPath(all[0]!));
      expect([v.sha256, v.revision]).toEqual([all[0]!.sha256, all[0]!.revision]);
      const list = await t.command('backups', { user: 'UALICE' });
      const listed = await answerAt(t.slack, list.responseUrl);
      expect(listed).toContain(`\`${id}\``);
      expect(listed).toContain('1 in all');
      // A restore from the torn stream's name is refused: it is not a backup.
      const tornId = /^snapshot_(.+)\.db\.partial$/.exec(torn[0]!)![1]!;
      expect(await store.get('lab', tornId)).toBeNull();
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);

  it('a replace whose worker is killed mid-snapshot and the next one mid catch-up wait: resumed each time, the backup whole, healthy at the end', async () => {
    await t.lab.corruptMember('m3');
    // m3's kubelet is late: whatever manifest the replace writes, nothing starts etcd on m3 until it is back.
    const m3 = t.lab.host('m3').supervisor;
    await m3.stop();
    const asideBefore = asideDirs(t.lab);
    // Worker 0 dies mid-snapshot (the fault); worker 1 is killed by this test during the catch-up wait; worker 2 finishes.
    chain = new WorkerChain(t.env, [MID_SNAPSHOT]);
    let kubeletBack = false;
    try {
      const since = t.slack.lastSeq;
      await t.command('replace m3', { user: 'UALICE' });
      const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 60_000, since);
      const ts = plan.ts!;
      const backupId = /→ backup (\d{4}-\d{2}-\d{2}_\d{6})/.exec(textOf(latest(t.slack, ts)))?.[1] ?? /backup (\d{4}-\d{2}-\d{2}_\d{6})/.exec(textOf(latest(t.slack, ts)))![1]!;

      expect((await chain.workers[0]!.exit).signal).toBe('SIGKILL');
      expect(partials()).toContain(`snapshot_${backupId}.db.partial`);
      expect(committed()).not.toContain(`backup_${backupId}.json`);

      // Approve the gates while waiting for step 6 (wait until m3 has caught up) to run on worker 1.
      const approving = approveUntilEnded(t, ts, 'UBOB', 240_000, () => chain!.output());
      await waitFor(
        'step 6 polling on the second worker',
        () => /^:hourglass_flowing_sand: \*6\. Wait until m3 has caught up\*/m.test(textOf(latest(t.slack, ts))) && chain!.workers.length === 2,
        120_000,
        50,
      );
      const second = chain.workers[1]!;
      // The fault: the worker dies (SIGKILL) while the step polls; m3 has not started.
      expect(m3.pid()).toBeNull();
      second.child.kill('SIGKILL');
      await second.exit;
      await m3.start();
      kubeletBack = true;
      const header = await approving;

      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${textOf(latest(t.slack, ts))}\n${thread}\n${chain.output()}`).toBe('Replace m3 in lab: DONE');
      expect(chain.exits()).toEqual(['SIGKILL', 'SIGKILL', null]);
      expect(thread).toMatch(/Step 1 \([^)]*\) was interrupted; resuming/);
      expect(thread).toMatch(/Step 6 \([^)]*\) was interrupted; resuming/);
      // The snapshot the run took is the whole one, under the planned ID; no torn file of it is left.
      const store = new DirectoryBackupStore(t.config.inventory.backups.dir);
      const facts = (await store.get('lab', backupId))!;
      expect(facts).not.toBeNull();
      const v = await verifySnapshot(store.snapshotPath(facts));
      expect([v.sha256, v.revision]).toEqual([facts.sha256, facts.revision]);
      expect(partials()).not.toContain(`snapshot_${backupId}.db.partial`);
      // Nothing destructive twice: m3 removed once, its data dir moved aside once.
      expect(thread.match(/Step 2: Remove m3 from the member list: removed m3/g) ?? []).toHaveLength(1);
      expect(asideDirs(t.lab).m3!.filter((d) => !asideBefore.m3!.includes(d))).toHaveLength(1);

      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
      const { stdout } = await t.lab.etcdctl(['get', '/mid/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m3').clientUrl]);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(20);
    } finally {
      if (!kubeletBack) m3.start();
      await chain.stop();
      chain = null;
    }
  }, 420_000);

  it('a worker killed right after it opened a gate, before it drew the buttons: the next one draws them, and the run ends DONE', async () => {
    await t.lab.corruptMember('m3');
    // The fault: the worker dies (SIGKILL) once the gate of the first destructive step is saved.
    chain = new WorkerChain(t.env, [{ MEDIC_FAULT_KILL_AT: 'gate-opened' }]);
    try {
      const since = t.slack.lastSeq;
      await t.command('replace m3', { user: 'UALICE' });
      const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 60_000, since);
      const ts = plan.ts!;
      expect((await chain.workers[0]!.exit).signal).toBe('SIGKILL');
      // Without buttons nobody could approve: the run would wait forever.
      await waitForGate(t.slack, ts, 1, 1, 30_000);
      const header = await approveUntilEnded(t, ts, 'UBOB', 240_000, () => chain!.output());
      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${textOf(latest(t.slack, ts))}\n${thread}\n${chain.output()}`).toBe('Replace m3 in lab: DONE');
      expect(chain.exits()).toEqual(['SIGKILL', null]);
      expect(thread.match(/Step 2: Remove m3 from the member list: removed m3/g) ?? []).toHaveLength(1);
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);

  it('a worker killed right after it saved a step, before it queued the next one or ended the run: the run moves on, ends DONE and frees the cluster', async () => {
    await t.lab.corruptMember('m3');
    // The faults: one worker dies once step 2's outcome is saved (its next job never queued), the next once the last step's (the Kubernetes wait) is (the run saved as done, nothing else).
    chain = new WorkerChain(t.env, [{ MEDIC_FAULT_KILL_AFTER_RECORD: 'member-remove' }, { MEDIC_FAULT_KILL_AFTER_RECORD: 'kube-check' }]);
    try {
      let since = t.slack.lastSeq;
      await t.command('replace m3', { user: 'UALICE' });
      const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 60_000, since);
      const ts = plan.ts!;
      const header = await approveUntilEnded(t, ts, 'UBOB', 120_000, () => chain!.output());
      expect(header, `${textOf(latest(t.slack, ts))}\n${threadOf(t.slack, ts).join('\n')}\n${chain.output()}`).toBe('Replace m3 in lab: DONE');
      expect(chain.exits()).toEqual(['SIGKILL', 'SIGKILL', null]);
      // The thread says how the run ended, though the worker that ended it could not.
      expect(threadOf(t.slack, ts).join('\n')).toMatch(/ended DONE \(every step done\); the worker stopped before it said so\. Done: 1\. Take and verify a snapshot; .*8\. Verify every member healthy[^;]*; 9\. Wait for node m3 Ready/);
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);

      // The cluster is free again: the next request is judged on the cluster, not refused for a run that ended.
      since = t.slack.lastSeq;
      await t.command('restore-quorum', { user: 'UALICE' });
      const next = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /restore-quorum.* refused/.test(String(r.body.text)), 60_000, since);
      expect(textOf(next)).toContain('quorum holds');
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);

  it('restore-quorum with its worker killed while the survivor restarts with --force-new-cluster: forced once, the flag gone, every key kept', async () => {
    // The fault: two of three members die (SIGKILL).
    for (const name of ['m2', 'm3']) await t.lab.killMember(name);
    const forcedBefore = etcdLogCount(t.lab, 'm1', /"forcing restart member"/);
    const manifest = join(t.lab.host('m1').manifestsDir, 'etcd.yaml');
    chain = new WorkerChain(t.env, []);
    try {
      const since = t.slack.lastSeq;
      await t.command('restore-quorum', { user: 'UALICE' });
      const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Restore quorum of lab/.test(String(r.body.text)), 60_000, since);
      const ts = plan.ts!;
      const approving = approveUntilEnded(t, ts, 'UBOB', 300_000, () => chain!.output());
      // The fault: the worker dies (SIGKILL) as soon as the survivor's manifest carries the flag, while the step waits for it to lead alone.
      await waitFor('m1 written with --force-new-cluster', () => existsSync(manifest) && readFileSync(manifest, 'utf8').includes('--force-new-cluster'), 120_000, 10);
      chain.workers[0]!.child.kill('SIGKILL');
      const header = await approving;

      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${textOf(latest(t.slack, ts))}\n${thread}\n${chain.output()}`).toBe('Restore quorum of lab: DONE');
      expect(chain.exits()).toEqual(['SIGKILL', null]);
      expect(thread).toMatch(/Step 3 \([^)]*\) was interrupted; resuming/);
      expect(etcdLogCount(t.lab, 'm1', /"forcing restart member"/) - forcedBefore).toBe(1);
      expect(readFileSync(manifest, 'utf8')).not.toContain('force-new-cluster');
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
      const { stdout } = await t.lab.etcdctl(['get', '/mid/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m3').clientUrl]);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(20);
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);
});
