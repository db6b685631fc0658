import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveUntilEnded, asideDirs, WorkerChain } from '../support/crash-workers.js';
import { approveStep, latest, planRun, takeBackup, textOf, threadOf, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const LAB_SUBNET = 166;

/** restore-quorum's fence (every host at once) attacked: one host refusing, one host slow while the worker dies. */
describe('restore-quorum under attack: its fence, its hosts', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;

  beforeAll(async () => {
    // Workers run as their own processes, so that a test can kill one mid-step.
    t = await startMedicLab('rq-attack', LAB_SUBNET, { roles: ROLES, botOnly: true });
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/attack/k${i}`, `v${i}`]);
  });
  afterAll(async () => {
    await chain?.stop();
    await t?.stop();
  });

  /** The fault: two of three members die (SIGKILL); their data stays on disk. */
  async function loseMajority(): Promise<void> {
    for (const name of ['m2', 'm3']) await t.lab.killMember(name);
  }

  const plan = (text: string) => planRun(t, text, /^(Restore quorum of lab|\/etcd restore.* refused)/);
  const asideDir = (name: string) => join(dirname(t.lab.host(name).manifestsDir), 'etcd-medic-aside');

  it('one host refuses the fence (etcd still listens there) while the other is fenced: the run fails, and the thread names the fenced host and where its manifest and data are, not the one left as it was', async () => {
    chain = new WorkerChain(t.env, []);
    let listener: Server | null = null;
    try {
      await loseMajority();
      const { ts, runId } = await plan('restore-quorum');
      expect(textOf(latest(t.slack, ts))).toContain('force-new-cluster path: m1');
      // The fault, after the plan: something comes up on m3's peer address, so m3's etcd is not known to be dead.
      const m3 = t.lab.host('m3');
      listener = createServer((s) => s.destroy());
      await new Promise<void>((res) => listener!.listen(Number(new URL(m3.peerUrl).port), m3.ip, res));
      expect(await approveStep(t, ts, 1, 'UBOB')).toContain('Approved step 2');
      await waitForRunStatus(t.slack, ts, 'FAILED', 120_000);
      const thread = threadOf(t.slack, ts).join('\n');

      // What the hosts show: m2 fenced (manifest and data aside), m3 left as it was.
      const m2 = t.lab.host('m2');
      expect(existsSync(`${m2.dataDir}.before-${runId}`)).toBe(true);
      expect(existsSync(m2.dataDir)).toBe(false);
      expect(existsSync(m3.dataDir)).toBe(true);
      expect(readdirSync(dirname(m3.dataDir)).filter((f) => f.includes(runId))).toEqual([]);

      expect(thread).toContain('fencing failed on m3 of m2, m3');
      expect(thread).toMatch(/m3, left as it was \(refused before changing anything there\): .*etcd of m3 still listens on/);
      // The timeline says what this run left stopped, and where: m2 only.
      const left = threadOf(t.slack, ts).find((l) => l.includes('work left half-done'));
      expect(left, thread).toBeDefined();
      expect(left).toContain(`etcd of m2 fenced by this run and not started again`);
      expect(left).toContain(`data at ${m2.dataDir}.before-${runId}`);
      expect(left).toContain('`/etcd restore-quorum lab` carries on');
      expect(left).not.toContain('m3');

      // Put the lab back as it was: m2's data (its manifest was never in the kubelet's directory since the fault).
      renameSync(`${m2.dataDir}.before-${runId}`, m2.dataDir);
    } finally {
      await new Promise((r) => (listener ? listener.close(r) : r(null)));
      await chain.stop();
      chain = null;
    }
    for (const m of ['m2', 'm3']) await t.lab.startMember(m);
    await t.lab.waitHealthy(60_000);
  }, 240_000);

  it('a worker killed mid-fence while one host waits on its member lock: the next worker resumes, the fenced host is not fenced twice, the slow one is fenced once, every key kept', async () => {
    chain = new WorkerChain(t.env, []);
    let holder: ChildProcess | null = null;
    try {
      await loseMajority();
      const before = asideDirs(t.lab);
      const { ts, runId } = await plan('restore-quorum');
      // The fault: another script holds m3's member lock, so m3's part of the fence waits while m2's goes on.
      // In its own process group: flock's sleep holds the lock too, and both go when the group is killed.
      mkdirSync(asideDir('m3'), { recursive: true });
      holder = spawn('flock', [join(asideDir('m3'), 'member.lock'), 'sleep', '600'], { stdio: 'ignore', detached: true });
      await waitFor('the lock held', async () => holder!.pid !== undefined, 5000);
      const first = chain.current!;
      expect(await approveStep(t, ts, 1, 'UBOB')).toContain('Approved step 2');
      await waitFor('m2 fenced while m3 waits', async () => existsSync(`${t.lab.host('m2').dataDir}.before-${runId}`), 60_000, 100);
      // The fault: the worker dies in the middle of the fence (SIGKILL, no cleanup).
      first.child.kill('SIGKILL');
      await first.exit;
      await waitFor('the fence resumed', async () => threadOf(t.slack, ts).some((l) => /Step 2 \([^)]*\) was interrupted; resuming/.test(l)), 60_000);
      // The slow host comes free; the resumed fence goes on there.
      process.kill(-holder.pid!, 'SIGTERM');
      const header = await approveUntilEnded(t, ts, 'UBOB', 300_000, () => chain!.output());
      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${thread}\n${chain.output()}`).toBe('Restore quorum of lab: DONE');

      // Each fenced data dir was moved aside once, by whichever worker got there first.
      const after = asideDirs(t.lab);
      for (const m of ['m2', 'm3']) expect(after[m]!.filter((d) => !before[m]!.includes(d))).toEqual([`etcd.before-${runId}`]);
      expect(thread).toMatch(/m2: .*data dir already moved aside/);
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
      const { stdout } = await t.lab.etcdctl(['get', '/attack/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m3').clientUrl]);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(20);
    } finally {
      if (holder?.pid) {
        try {
          process.kill(-holder.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await chain.stop();
      chain = null;
    }
  }, 420_000);

  it('a survivor whose shell warns on stderr at every start (a locale it lacks) is restored from the snapshot: the warning is not taken for the restore already done', async () => {
    chain = new WorkerChain(t.env, []);
    try {
      // The fault: every bash on m1 prints "bash: warning: setlocale: LC_ALL: cannot change locale" on stderr first.
      await t.lab.restartSshd('m1', { env: { LC_ALL: 'xx_XX.UTF-8' } });
      const { id } = await takeBackup(t);
      for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/attack-after/k${i}`, `v${i}`]);
      await loseMajority();
      const before = asideDirs(t.lab);
      const { ts, runId } = await plan(`restore-quorum --snapshot ${id}`);
      expect(textOf(latest(t.slack, ts))).toContain(`snapshot path: backup ${id}`);
      const header = await approveUntilEnded(t, ts, 'UBOB', 300_000, () => chain!.output());
      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${thread}\n${chain.output()}`).toBe('Restore quorum of lab: DONE');
      expect(thread).not.toContain('snapshot already restored and verified on the host');
      expect(thread).toMatch(/restored onto m1 \(revision \d+, checked offline, KV hash \d+ as recorded\)/);
      // m1's data dir was moved aside (and a restored one put in its place) by this run, once.
      expect(asideDirs(t.lab).m1!.filter((d) => !before.m1!.includes(d))).toEqual([`etcd.before-${runId}`]);
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
      const after = await t.lab.etcdctl(['get', '/attack-after/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m2').clientUrl]);
      expect(after.stdout.trim()).toBe('');
      const kept = await t.lab.etcdctl(['get', '/attack/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m2').clientUrl]);
      expect(kept.stdout.split('\n').filter(Boolean)).toHaveLength(20);
    } finally {
      await chain.stop();
      chain = null;
      await t.lab.restartSshd('m1', {});
    }
  }, 420_000);

  it('a worker killed while force-new-cluster copies the survivor\'s manifest aside (a slow disk): the next worker copies it whole and starts from the original, not from half of it', async () => {
    chain = new WorkerChain(t.env, []);
    const m1 = t.lab.host('m1');
    const slowCp = join(m1.binDir, 'cp');
    const stalled = join(m1.root, 'cp-stalled');
    try {
      await loseMajority();
      const original = readFileSync(join(m1.manifestsDir, 'etcd.yaml'), 'utf8');
      // The fault: on m1, cp writes half of the file, then stalls (a slow disk) until its script is killed.
      mkdirSync(m1.binDir, { recursive: true });
      writeFileSync(slowCp, `#!/bin/bash\nsrc="\${@: -2:1}"; dst="\${@: -1}"\nhead -c $(( $(wc -c < "$src") / 2 )) "$src" > "$dst"\ntouch ${stalled}\nexec sleep 600\n`);
      chmodSync(slowCp, 0o755);
      const { ts, runId } = await plan('restore-quorum');
      expect(textOf(latest(t.slack, ts))).toContain('force-new-cluster path: m1');
      const first = chain.current!;
      const ended = approveUntilEnded(t, ts, 'UBOB', 300_000, () => chain!.output());
      await waitFor('the copy of m1\'s manifest stalled halfway', async () => existsSync(stalled), 120_000, 100);
      // The fault: the worker dies mid-copy (SIGKILL); the disk is well again for the next one.
      first.child.kill('SIGKILL');
      await first.exit;
      rmSync(slowCp);
      const header = await ended;
      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${thread}\n${chain.output()}`).toBe('Restore quorum of lab: DONE');
      expect(thread).toMatch(/Step 3 \([^)]*\) was interrupted; resuming/);
      // The copy the run keeps is the manifest as it was, whole; the manifest etcd runs on has the original's flags, without --force-new-cluster.
      expect(readFileSync(join(asideDir('m1'), `etcd.yaml.${runId}`), 'utf8')).toBe(original);
      const now = readFileSync(join(m1.manifestsDir, 'etcd.yaml'), 'utf8');
      expect(now).not.toContain('force-new-cluster');
      expect(now).toContain(`--data-dir=${m1.dataDir}`);
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
    } finally {
      rmSync(slowCp, { force: true });
      await chain.stop();
      chain = null;
    }
  }, 420_000);
});
