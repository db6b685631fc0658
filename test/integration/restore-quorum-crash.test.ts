import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveUntilEnded, asideDirs, etcdLogCount, killAfterEach, WorkerChain } from '../support/crash-workers.js';
import { latest, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const GROW_BACK = ['member-add-learner', 'write-manifest', 'wait-caught-up', 'promote'] as const;

// The steps of each path, in plan order: the worker is killed right after each one acts.
// The Kubernetes check ends both (here: no kubeconfig, so it says so and passes).
const FORCE_NEW_CLUSTER = ['snapshot', 'fence', 'force-new-cluster', ...GROW_BACK, ...GROW_BACK, 'verify', 'kube-check'];
// kube-apiserver is stopped before the fence and started after the last check, as /etcd restore does.
const FROM_SNAPSHOT = ['verify-backup', 'apiservers', 'fence', 'restore-snapshot', ...GROW_BACK, ...GROW_BACK, 'verify', 'apiservers', 'kube-check'];

describe('restore-quorum with a worker killed right after every step', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes so that each can die.
    t = await startMedicLab('rq-crash', 75, { roles: ROLES, botOnly: true });
    for (let i = 0; i < 30; i++) await t.lab.etcdctl(['put', `/rq/k${i}`, `v${i}`]);
  });
  afterAll(async () => {
    await chain?.stop();
    await t?.stop();
  });

  /** The fault: two of three members die (SIGKILL); their data stays on disk for the fence to move aside. */
  async function loseMajority(): Promise<void> {
    for (const name of ['m2', 'm3']) await t.lab.killMember(name);
  }

  async function plan(text: string): Promise<{ ts: string; runId: string }> {
    const since = t.slack.lastSeq;
    await t.command(text, { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Restore quorum of lab|\/etcd restore.* refused)/.test(String(r.body.text)), 60_000, since);
    expect(String(msg.body.text)).toMatch(/^Restore quorum of lab/);
    return { ts: msg.ts!, runId: /run (r-[0-9a-f]{8})/.exec(String(msg.body.text))![1]! };
  }

  async function keys(prefix: string, member: string): Promise<number> {
    const { stdout } = await t.lab.etcdctl(['get', prefix, '--prefix', '--keys-only', '--consistency=s'], [t.lab.host(member).clientUrl]);
    return stdout.split('\n').filter(Boolean).length;
  }

  /** Every member's cluster ID as it answers for itself. */
  async function clusterIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const h of t.lab.hosts) {
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
      ids.push(/"cluster_id":(\d+)/.exec(stdout)![1]!);
    }
    return ids;
  }

  /** What must hold after either path: every step was interrupted once and resumed, and the cluster is whole. */
  async function expectResumedEverywhereAndHealthy(ts: string, steps: string[], header: string): Promise<string> {
    const thread = threadOf(t.slack, ts).join('\n');
    expect(header, `${textOf(latest(t.slack, ts))}\n${thread}\n${chain!.output()}`).toBe('Restore quorum of lab: DONE');
    const plan = textOf(latest(t.slack, ts));
    // The plan has exactly the steps this test kills after, in this order.
    expect(plan.match(/^:[a-z_]+: \*\d+\. /gm) ?? []).toHaveLength(steps.length);
    // One worker died after each step; the one after the last finished the run.
    expect(chain!.exits().slice(0, steps.length)).toEqual(steps.map(() => 'SIGKILL'));
    expect(chain!.exits()).toHaveLength(steps.length + 1);
    for (let i = 1; i <= steps.length; i++) expect(thread).toMatch(new RegExp(`Step ${i} \\([^)]*\\) was interrupted; resuming`));
    // Each member grown back was added once: the retry after the crash found it in the list.
    expect(thread.match(/: added m[23] as learner/g) ?? []).toHaveLength(0);
    expect(thread.match(/a member with peer URL \S+ is already in the list/g) ?? []).toHaveLength(2);

    const members = await t.lab.memberList();
    expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
    expect((await t.lab.etcdctl(['endpoint', 'health'], t.lab.endpoints, true)).code).toBe(0);
    expect(new Set(await clusterIds()).size).toBe(1);
    return thread;
  }

  it('force-new-cluster path: resumed after each of its 13 steps (the Kubernetes check last), the survivor forced once, each fenced data dir moved aside once, every key kept', async () => {
    await loseMajority();
    const forcedBefore = etcdLogCount(t.lab, 'm1', /"forcing restart member"/);
    const asideBefore = asideDirs(t.lab);
    chain = new WorkerChain(t.env, killAfterEach(FORCE_NEW_CLUSTER));
    try {
      const { ts, runId } = await plan('restore-quorum');
      expect(textOf(latest(t.slack, ts))).toContain('force-new-cluster path: m1 is the most up-to-date survivor');
      const header = await approveUntilEnded(t, ts, 'UBOB', 400_000, () => chain!.output());
      const thread = await expectResumedEverywhereAndHealthy(ts, FORCE_NEW_CLUSTER, header);

      // m1 was started with --force-new-cluster exactly once (its own log says so), and the flag is gone.
      expect(etcdLogCount(t.lab, 'm1', /"forcing restart member"/) - forcedBefore).toBe(1);
      expect(thread).toContain('m1 already leads a one-member cluster: not forced again');
      expect(thread).toContain('--force-new-cluster is out of the manifest');
      // The fence moved each dead member's data dir aside once; the survivor's stayed.
      const aside = asideDirs(t.lab);
      expect(aside.m1).toEqual(asideBefore.m1);
      expect(aside.m2!.filter((d) => !asideBefore.m2!.includes(d))).toEqual([`etcd.before-${runId}`]);
      expect(aside.m3!.filter((d) => !asideBefore.m3!.includes(d))).toEqual([`etcd.before-${runId}`]);
      expect(await keys('/rq/', 'm3')).toBe(30);
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);

  it('snapshot path: resumed after each of its 15 steps (the Kubernetes check last), the backup restored once onto the survivor, every data dir moved aside once, keys as of the backup', async () => {
    const idsBefore = await clusterIds();
    chain = new WorkerChain(t.env, killAfterEach(FROM_SNAPSHOT));
    try {
      // The first worker takes the backup (a backup job is not a step: no fault fires there).
      const since = t.slack.lastSeq;
      await t.command('backup', { user: 'UALICE' });
      const backupMsg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 60_000, since);
      const id = /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*lab\*/.exec(textOf(backupMsg))![1]!;
      for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/after/k${i}`, `v${i}`]);
      await loseMajority();
      const asideBefore = asideDirs(t.lab);

      const { ts, runId } = await plan(`restore-quorum --snapshot ${id}`);
      expect(textOf(latest(t.slack, ts))).toContain(`snapshot path: backup ${id}`);
      const header = await approveUntilEnded(t, ts, 'UBOB', 400_000, () => chain!.output());
      const thread = await expectResumedEverywhereAndHealthy(ts, FROM_SNAPSHOT, header);

      // The restore ran once: the retry found it done on the host and did not restore over the started member.
      expect(thread).toContain('snapshot already restored and verified on the host');
      expect((await clusterIds())[0]).not.toBe(idsBefore[0]);
      const aside = asideDirs(t.lab);
      for (const m of ['m1', 'm2', 'm3']) expect(aside[m]!.filter((d) => !asideBefore[m]!.includes(d))).toEqual([`etcd.before-${runId}`]);
      expect(await keys('/rq/', 'm2')).toBe(30);
      expect(await keys('/after/', 'm2')).toBe(0);
    } finally {
      await chain.stop();
      chain = null;
    }
  }, 420_000);
});
