import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { waitFor } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveUntilEnded, asideDirs, killAfterEach, WorkerChain } from '../support/crash-workers.js';
import { latest, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };

// Every step of `/etcd restore` on three members, in plan order: the worker is killed right after each one acts.
const RESTORE = ['verify-backup', 'snapshot', 'apiservers', 'fence', 'restore-snapshot', 'restore-snapshot', 'restore-snapshot', 'verify', 'apiservers', 'kube-check'];

describe('/etcd restore with a worker killed right after every step', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;

  beforeAll(async () => {
    t = await startMedicLab('restore-crash', 76, { roles: ROLES, botOnly: true });
  });
  afterAll(async () => {
    await chain?.stop();
    await t?.stop();
  });

  it('resumed after each of its 10 steps (the last the Kubernetes check): each data dir moved aside once, each member restored once, kube-apiserver back, every member at the backup', async () => {
    // A stand-in kube-apiserver static pod on every master, run by the same kubelet stand-in.
    const apiManifest = stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kube-apiserver' }, spec: { containers: [{ name: 'kube-apiserver', command: ['sleep', '3600'] }] } });
    for (const h of t.lab.hosts) writeFileSync(join(h.manifestsDir, 'kube-apiserver.yaml'), apiManifest);
    await waitFor('kube-apiservers up', () => t.lab.hosts.every((h) => h.supervisor.pid('kube-apiserver.yaml') !== null), 10_000);
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/restore/k${i}`, `v${i}`]);

    chain = new WorkerChain(t.env, killAfterEach(RESTORE));
    try {
      // The first worker takes the backup (a backup job is not a step: no fault fires there).
      let since = t.slack.lastSeq;
      await t.command('backup', { user: 'UALICE' });
      const backupMsg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 60_000, since);
      const id = /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*lab\*/.exec(textOf(backupMsg))![1]!;
      const revision = Number(/revision (\d+),/.exec(textOf(backupMsg))![1]);
      for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/later/k${i}`, `v${i}`]);
      const asideBefore = asideDirs(t.lab);

      since = t.slack.lastSeq;
      await t.command(`restore ${id}`, { user: 'UALICE' });
      const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Restore lab to backup|\/etcd restore.* refused)/.test(String(r.body.text)), 60_000, since);
      expect(String(msg.body.text)).toMatch(/^Restore lab to backup/);
      const ts = msg.ts!;
      const runId = /run (r-[0-9a-f]{8})/.exec(String(msg.body.text))![1]!;
      const header = await approveUntilEnded(t, ts, 'UBOB', 400_000, () => chain!.output());
      const thread = threadOf(t.slack, ts).join('\n');
      const plan = textOf(latest(t.slack, ts));
      expect(header, `${plan}\n${thread}\n${chain.output()}`).toBe(`Restore lab to backup ${id}: DONE`);
      expect(plan.match(/^:[a-z_]+: \*\d+\. /gm) ?? []).toHaveLength(RESTORE.length);
      expect(chain.exits().slice(0, RESTORE.length)).toEqual(RESTORE.map(() => 'SIGKILL'));
      expect(chain.exits()).toHaveLength(RESTORE.length + 1);
      for (let i = 1; i <= RESTORE.length; i++) expect(thread).toMatch(new RegExp(`Step ${i} \\([^)]*\\) was interrupted; resuming`));

      // The backup of the current state was taken once: the retry found it.
      expect(thread).toMatch(/Step 2: Back up the current state first: backup \S+ was already taken/);
      // Each member was restored once: every retry found its restore done and did not restore over it.
      expect(thread.match(/snapshot already restored and verified on the host/g) ?? []).toHaveLength(3);
      const aside = asideDirs(t.lab);
      for (const m of ['m1', 'm2', 'm3']) expect(aside[m]!.filter((d) => !asideBefore[m]!.includes(d))).toEqual([`etcd.before-${runId}`]);

      await waitFor('kube-apiservers back', () => t.lab.hosts.every((h) => h.supervisor.pid('kube-apiserver.yaml') !== null), 10_000);
      const members = await t.lab.memberList();
      expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
      for (const h of t.lab.hosts) {
        const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
        expect(Number(/"revision":(\d+)/.exec(stdout)![1])).toBe(revision);
        const { stdout: keys } = await t.lab.etcdctl(['get', '/', '--prefix', '--keys-only', '--consistency=s'], [h.clientUrl]);
        const all = keys.split('\n').filter(Boolean);
        expect(all.filter((k) => k.startsWith('/restore/'))).toHaveLength(20);
        expect(all.filter((k) => k.startsWith('/later/'))).toHaveLength(0);
      }
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);

  it('a backup of the same name taken just before the restore was planned does not count as the backup of the current state', async () => {
    const store = new DirectoryBackupStore(t.config.inventory.backups.dir);
    let since = t.slack.lastSeq;
    // Worker 0 takes the backup to restore, plans the restore, verifies the backup and dies; before
    // worker 1 starts, a backup of the name the plan chose for its own appears, taken before the run
    // (as the schedule or `/etcd backup` would in the same second): it lacks the writes made since.
    chain = new WorkerChain(t.env, [{ MEDIC_FAULT_KILL_AFTER: 'verify-backup' }], async (k) => {
      if (k !== 1) return;
      const plans = t.slack.messages((r) => r.method === 'chat.postMessage' && /^Restore lab to backup/.test(String(r.body.text)));
      const planned = /→ backup (\d{4}-\d{2}-\d{2}_\d{6})/.exec(textOf(plans[plans.length - 1]!))![1]!;
      const old = (await store.list('lab')).at(-1)!;
      copyFileSync(store.snapshotPath(old), join(t.config.inventory.backups.dir, 'lab', `snapshot_${planned}.db`));
      await store.commit({ ...old, id: planned, snapshotFile: `snapshot_${planned}.db`, resourcesFile: null });
    });
    try {
      await t.command('backup', { user: 'UALICE' });
      const backupMsg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 60_000, since);
      const id = /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*lab\*/.exec(textOf(backupMsg))![1]!;
      for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/newer/k${i}`, `v${i}`]);
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [t.lab.host('m1').clientUrl]);
      const current = Number(/"revision":(\d+)/.exec(stdout)![1]);

      since = t.slack.lastSeq;
      await t.command(`restore ${id}`, { user: 'UALICE' });
      const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Restore lab to backup/.test(String(r.body.text)), 60_000, since);
      const ts = msg.ts!;
      const header = await approveUntilEnded(t, ts, 'UBOB', 300_000, () => chain!.output());
      const thread = threadOf(t.slack, ts).join('\n');
      expect(header, `${textOf(latest(t.slack, ts))}\n${thread}\n${chain.output()}`).toBe(`Restore lab to backup ${id}: DONE`);
      // The state just before the restore is in the store: the restore can itself be undone.
      const taken = /Step 2: Back up the current state first: backup (\S+): \d+ bytes from m\d, revision (\d+)/.exec(thread);
      expect(taken, thread).not.toBeNull();
      expect(Number(taken![2])).toBe(current);
      expect((await store.get('lab', taken![1]!))!.revision).toBe(current);
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);
});
