import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { resourceType, type EventType, type KubeObject } from '../../src/lab/kube/store.js';
import type { StatefulSetLab } from '../../src/lab/statefulset/index.js';
import { approveUntilEnded, killAfterEach, WorkerChain } from '../support/crash-workers.js';
import { latest, textOf, threadOf } from '../support/slack-view.js';
import { startStatefulSetMedic, type StatefulSetMedic } from '../support/statefulset-medic.js';

const NS = 'user1';
// Every step of the statefulset replace of a listed member, in plan order: worker k dies right after step k acts.
const STEPS = ['workload-check', 'pdb-delete', 'snapshot', 'sts-initial-state', 'drain', 'member-remove', 'wipe-claim', 'member-add-learner', 'uncordon', 'wait-caught-up', 'promote', 'verify', 'sts-initial-state', 'pdb-restore'];

describe('the statefulset replace with a worker killed right after every step', () => {
  let t: StatefulSetMedic;
  let lab: StatefulSetLab;
  let slack: FakeSlack;
  let chain: WorkerChain | null = null;
  // What the admin cluster's API saw happen, from its own store's watch: each write once, whoever made it.
  const seen: string[] = [];
  const unwatch: (() => void)[] = [];

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes so that each can die.
    t = await startStatefulSetMedic('statefulset-crash', 127, { drainTimeoutSeconds: 20, botOnly: true });
    ({ lab, slack } = t);
    for (let i = 0; i < 40; i++) await lab.etcdctl(['put', `/sts-crash/k${i}`, `v${i}`]);
    const watch = (resource: string, group: string, say: (type: EventType, o: KubeObject) => string | null) => {
      unwatch.push(lab.store.watch(resourceType(resource, group)!, undefined, lab.store.resourceVersion, (type, o) => {
        const line = say(type, o);
        if (line) seen.push(line);
      }));
    };
    watch('poddisruptionbudgets', 'policy', (type, o) => (type === 'MODIFIED' ? null : `${type} pdb ${o.metadata.name}`));
    const stateOf = (o: KubeObject): string => (o as any).spec.template.spec.containers[0].args.find((a: string) => a.startsWith('--initial-cluster-state='));
    let state = stateOf(lab.store.get(resourceType('statefulsets', 'apps')!, 'kube-etcd', NS));
    watch('statefulsets', 'apps', (_type, o) => {
      if (stateOf(o) === state) return null;
      state = stateOf(o);
      return `sts ${state}`;
    });
    // Utility pods with the run that made them (its label): how many each run started, and when they went.
    watch('pods', '', (type, o) => (type !== 'MODIFIED' && o.metadata.name!.startsWith('etcd-utility') ? `${type} pod ${o.metadata.name} of ${o.metadata.labels?.['etcd-medic/run']}` : null));
  }, 90_000);
  afterAll(async () => {
    for (const u of unwatch) u();
    await chain?.stop();
    await t?.stop();
  });

  it('resumed after each of its 14 steps: the PDB deleted and made again once, one member removed, the claim data moved aside once, healthy, every key on the new member', async () => {
    const before = new Map((await lab.memberList()).map((m) => [m.name, m.id]));
    await lab.failReplica(1);
    const claimBefore = readdirSync(lab.claimDir('data-kube-etcd-1')).filter((f) => f.startsWith('before-'));
    chain = new WorkerChain(t.env, killAfterEach(STEPS));

    const since = slack.lastSeq;
    await t.command('replace kube-etcd-1');
    const plan = await slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace kube-etcd-1 in user1/.test(String(r.body.text)), 60_000, since);
    const ts = plan.ts!;
    const runId = /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]!;
    const header = await approveUntilEnded(t, ts, 'UBOB', 150_000, () => chain!.output());

    const thread = threadOf(slack, ts).join('\n');
    const why = `${textOf(latest(slack, ts))}\n--- thread ---\n${thread}\n${chain.output()}`;
    expect(header, why).toBe('Replace kube-etcd-1 in user1: DONE');
    // The plan has exactly the steps killed after, in this order; one worker died after each, the next finished.
    expect(textOf(latest(slack, ts)).match(/^:[a-z_]+: \*\d+\. /gm) ?? [], why).toHaveLength(STEPS.length);
    expect(chain.exits().slice(0, STEPS.length)).toEqual(STEPS.map(() => 'SIGKILL'));
    expect(chain.exits()).toHaveLength(STEPS.length + 1);
    for (let i = 1; i <= STEPS.length; i++) expect(thread, why).toMatch(new RegExp(`Step ${i} \\([^)]*\\) was interrupted; resuming`));
    // Each step that changes something found, when resumed, its work already done.
    expect(thread).toContain('Step 2: Save and delete the PodDisruptionBudget kube-etcd-pdb: PDB kube-etcd-pdb is already deleted; its saved copy is');
    expect(thread).toContain('Step 4: Set the StatefulSet kube-etcd to --initial-cluster-state=existing: statefulset kube-etcd already has --initial-cluster-state=existing: nothing done');
    expect(thread).toContain('Step 5: Drain the node of kube-etcd-1: node admin-node-2 drained: already cordoned; nothing left to evict');
    // The resumed wipe read what the first utility pod did from its status, and started none to look.
    expect(thread).toMatch(new RegExp(`Step 7: [^\\n]*: utility pod etcd-utility-1 of this run had already ended \\(Succeeded\\) when this step resumed; no second pod was started\\. kube-etcd-1's data on claim data-kube-etcd-1 moved aside to /var/lib/etcd/before-${runId}`));
    expect(thread).toMatch(/Step 8: [^\n]*already in the list/);
    expect(thread).toMatch(/Step 9: [^\n]*was already schedulable/);
    expect(thread).not.toMatch(/Step 9: [^\n]*utility pod/);
    expect(thread).toContain('Step 13: Set the StatefulSet kube-etcd back to --initial-cluster-state=new: statefulset kube-etcd already has --initial-cluster-state=new: nothing done');
    expect(thread).toMatch(/Step 14: [^\n]*: PDB user1\/kube-etcd-pdb is already there: nothing done/);
    expect(thread).not.toMatch(/Put back:/);

    // The admin cluster's API saw each change once: one PDB delete and one create, the template to existing and back,
    // and exactly one utility pod for the run, made by the wipe and deleted by the uncordon (before the template went back).
    expect(seen, why).toEqual(['DELETED pdb kube-etcd-pdb', 'sts --initial-cluster-state=existing', `ADDED pod etcd-utility-1 of ${runId}`, `DELETED pod etcd-utility-1 of ${runId}`, 'sts --initial-cluster-state=new', 'ADDED pdb kube-etcd-pdb']);
    expect(seen.filter((l) => l.startsWith('ADDED pod etcd-utility') && l.endsWith(` of ${runId}`))).toHaveLength(1);
    // One member removed: the other two kept their IDs, kube-etcd-1 has a new one, three started voters.
    const members = await lab.memberList();
    expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual([0, 1, 2].map((i) => `kube-etcd-${i} started voter`));
    for (const name of ['kube-etcd-0', 'kube-etcd-2']) expect(members.find((m) => m.name === name)!.id).toBe(before.get(name));
    expect(members.find((m) => m.name === 'kube-etcd-1')!.id).not.toBe(before.get('kube-etcd-1'));
    // The claim's broken data moved aside once, into this run's directory, as it was.
    const claim = lab.claimDir('data-kube-etcd-1');
    expect(readdirSync(claim).filter((f) => f.startsWith('before-') && !claimBefore.includes(f))).toEqual([`before-${runId}`]);
    expect(readdirSync(join(claim, `before-${runId}`))).toEqual(['member']);
    expect(readFileSync(join(claim, `before-${runId}`, 'member/snap/db'))[0]).toBe(0x5a);
    // Back as it was around etcd, and healthy with every key on the new member.
    expect((await lab.kubectl(['get', 'pdb', 'kube-etcd-pdb', '-n', NS, '-o', 'jsonpath={.spec.minAvailable}'])).stdout).toBe('3');
    expect(lab.pod('etcd-utility-1')).toBeUndefined();
    await lab.waitHealthy();
    const keys = await lab.etcdctl(['get', '/sts-crash/', '--prefix', '--keys-only', '--consistency=s'], [lab.endpoints[1]!]);
    expect(keys.stdout.split('\n').filter(Boolean)).toHaveLength(40);
  }, 180_000);
});
