import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { waitFor } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveStep, latest, planRun, takeBackup, textOf, threadOf, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };

describe('/etcd restore-quorum against the lab', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('restore-quorum', 38, { roles: ROLES });
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** The fault: two of three members die (SIGKILL) and their data dirs are gone. */
  async function loseMajority(): Promise<void> {
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    }
  }

  const plan = (text: string) => planRun(t, text, /^(Restore quorum of lab|Restore lab to backup|\/etcd restore.* refused)/);

  async function approve(ts: string, step: number): Promise<void> {
    expect(await approveStep(t, ts, step, 'UBOB')).toContain(`Approved step ${step + 1}`);
  }

  async function keys(prefix: string, member = 'm3'): Promise<number> {
    const { stdout } = await t.lab.etcdctl(['get', prefix, '--prefix', '--keys-only', '--consistency=s'], [t.lab.host(member).clientUrl]);
    return stdout.split('\n').filter(Boolean).length;
  }

  async function voters(): Promise<string[]> {
    return (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort();
  }

  it('refuses to fence a member that is supposed to be dead but still runs, and changes nothing', async () => {
    await t.lab.killMember('m3');
    // The fault: m2 hangs (SIGSTOP): it answers nothing, but its port is still open.
    const m2 = t.lab.host('m2').supervisor.pid()!;
    process.kill(m2, 'SIGSTOP');
    try {
      const { msg } = await plan('restore-quorum');
      const text = textOf(msg);
      expect(text).toContain('`/etcd restore-quorum` refused');
      expect(text).toContain('m2 is supposed to be dead, but etcd still listens on 127.0.38.2:2379 (seen over SSH) though it does not answer: it is hung, not dead');
      expect(text).toContain('Nothing was changed.');
      expect(existsSync(join(t.lab.host('m1').manifestsDir, 'etcd.yaml'))).toBe(true);
      expect(existsSync(join(t.lab.host('m2').manifestsDir, 'etcd.yaml'))).toBe(true);
      expect(existsSync(t.lab.host('m2').dataDir)).toBe(true);
    } finally {
      process.kill(m2, 'SIGCONT');
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  });

  it('restores quorum through force-new-cluster from the survivor: three voters, every key kept', async () => {
    for (let i = 0; i < 30; i++) await t.lab.etcdctl(['put', `/rq/k${i}`, `v${i}`]);
    await loseMajority();

    const { ts, runId } = await plan('restore-quorum');
    const planText = textOf(latest(t.slack, ts));
    expect(planText).toContain('*Why this plan:* force-new-cluster path: m1 is the most up-to-date survivor (raft index');
    expect(planText).toContain('Data loss: none seen');
    expect(planText).toContain('Pause whatever manages the control plane');
    await approve(ts, 1); // fence m2, m3
    await approve(ts, 2); // force-new-cluster on m1
    const done = await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    expect(done).toContain('--force-new-cluster is out of the manifest');

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/rq/')).toBe(30);
    expect((await t.lab.etcdctl(['endpoint', 'health'], t.lab.endpoints, true)).code).toBe(0);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toContain(`Run \`${runId}\` finished`);
    expect(thread).toMatch(/Start m2 with state "existing": manifest written from m1's .*etcd.yaml, adapted/);
  });

  it('restores quorum from a verified snapshot: keys up to the snapshot present, later keys gone, the loss stated', async () => {
    const { id } = await takeBackup(t);
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/after/k${i}`, `v${i}`]);
    await loseMajority();

    const { ts } = await plan(`restore-quorum --snapshot ${id}`);
    const planText = textOf(latest(t.slack, ts));
    expect(planText).toContain(`snapshot path: backup ${id}`);
    expect(planText).toMatch(/Data loss: the last revision seen was \d+; the restored state is at revision \d+: [1-9]\d* revisions? lost\./);
    await waitFor('the path in the thread', () => threadOf(t.slack, ts).some((l) => l.includes(`snapshot path: backup ${id}`) && /revisions? lost/.test(l)), 10_000);
    await approve(ts, 1); // stop kube-apiserver on the masters
    await approve(ts, 2); // fence m2, m3
    await approve(ts, 3); // restore onto m1
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);

    // The restored member holds the backup's data: its revision read offline and its KV hash as recorded.
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/restored onto m1 \(revision \d+, checked offline, KV hash \d+ as recorded\): it leads a one-member cluster/);
    expect(thread).toContain('kube-apiserver stopped on m1, m2, m3');
    expect(thread).toContain('kube-apiserver started again on m1, m2, m3');
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/rq/', 'm2')).toBe(30);
    expect(await keys('/after/', 'm2')).toBe(0);
  });

  it('/etcd restore brings every member to the snapshot, with kube-apiserver stopped meanwhile and started after', async () => {
    // A stand-in kube-apiserver static pod on every master, run by the same kubelet stand-in.
    const apiManifest = stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kube-apiserver' }, spec: { containers: [{ name: 'kube-apiserver', command: ['sleep', '3600'] }] } });
    for (const h of t.lab.hosts) writeFileSync(join(h.manifestsDir, 'kube-apiserver.yaml'), apiManifest);
    await waitFor('kube-apiservers up', () => t.lab.hosts.every((h) => h.supervisor.pid('kube-apiserver.yaml') !== null), 10_000);

    await t.lab.etcdctl(['put', '/restore/marker', 'before']);
    const { id, revision } = await takeBackup(t);
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/later/k${i}`, `v${i}`]);

    const { ts } = await plan(`restore ${id}`);
    expect(textOf(latest(t.slack, ts))).toMatch(/Data loss: the last revision seen was \d+: [5-9]\d* revisions after the snapshot will be gone/);
    await approve(ts, 2); // stop kube-apiserver
    await approve(ts, 3); // stop etcd everywhere, data aside
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);

    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toContain('kube-apiserver stopped on m1, m2, m3');
    expect(thread).toContain('kube-apiserver started again on m1, m2, m3');
    await waitFor('kube-apiservers back', () => t.lab.hosts.every((h) => h.supervisor.pid('kube-apiserver.yaml') !== null), 10_000);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    for (const h of t.lab.hosts) {
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
      expect(Number(/"revision":(\d+)/.exec(stdout)![1])).toBe(revision);
    }
    expect(await keys('/later/', 'm1')).toBe(0);
    expect(await keys('/restore/marker', 'm3')).toBe(1);
  });

  it('is refused while quorum holds, and explains its arguments', async () => {
    const { msg } = await plan('restore-quorum');
    expect(textOf(msg)).toContain('quorum holds (3 of 3 voters up with a leader)');
    const bad = await t.command('restore-quorum --snapshot yesterday', { user: 'UALICE' });
    expect(bad.body).toContain('is not a backup ID');
  });
});
