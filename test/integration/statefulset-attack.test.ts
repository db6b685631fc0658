import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import type { ClusterConfig } from '../../src/config/schema.js';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { EtcdPool } from '../../src/etcd/pool.js';
import { planReplace } from '../../src/runbook/replace-plan.js';
import { viewCluster } from '../../src/worker/cluster-view.js';
import { stepExecutors } from '../../src/worker/executors.js';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { KubeCluster } from '../../src/kube/client.js';
import { deletePdb } from '../../src/kube/pdbs.js';
import { resourceType } from '../../src/lab/kube/store.js';
import { waitFor } from '../../src/lab/proc.js';
import type { StatefulSetLab } from '../../src/lab/statefulset/index.js';
import { createLogger } from '../../src/log.js';
import { platformOf } from '../../src/platform/index.js';
import type { Run, StepOf } from '../../src/runbook/types.js';
import { drain, pdbDelete, pdbRestore, stsInitialState, undoInitialState, undoPdbDelete, type WorkloadStepContext } from '../../src/worker/steps/workload-steps.js';
import { answerAt, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';
import { startStatefulSetMedic, type StatefulSetMedic } from '../support/statefulset-medic.js';

const NS = 'user1';

/**
 * A hostile night for the statefulset replace: a second member on the failed
 * replica's node, a drain that cannot end cancelled in the middle, a PDB and a
 * template that someone else changed while the run had them.
 */
describe('the statefulset replace against what the admin cluster can do to it', () => {
  let t: StatefulSetMedic;
  let lab: StatefulSetLab;
  let slack: FakeSlack;
  let cluster: ClusterConfig;
  const pool = new EtcdPool();
  const kubectlJson = async (...args: string[]) => JSON.parse((await lab.kubectl([...args, '-o', 'json'])).stdout);
  const ready = (p: any) => (p?.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
  const command = (text: string, user = 'UALICE') => t.command(text, user);
  const approve = async (ts: string, step: number) => {
    const g = await waitForGate(slack, ts, step);
    return answerAt(slack, (await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: g.blockId, value: g.approve })).responseUrl);
  };
  const planFor = async (member: string) => {
    const since = slack.lastSeq;
    await command(`replace ${member}`);
    const plan = await slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace \S+ in user1/.test(String(r.body.text)), 60_000, since);
    return { ts: plan.ts!, runId: /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]! };
  };
  const explain = (ts: string) => (err: Error) => {
    throw new Error(`${err.message}\n--- thread ---\n${threadOf(slack, ts).join('\n')}`);
  };
  const ctx = (): WorkloadStepContext => ({ cluster, pool, log: createLogger('silent'), pollMs: 100 });
  const place = (member: string) => platformOf(cluster).workload!(cluster.members.find((m) => m.name === member)!);
  const unschedulable = async (node: string) => !!(await kubectlJson('get', 'node', node)).spec.unschedulable;

  beforeAll(async () => {
    // A drain here ends only when it is done or stopped: far past any wait of these tests.
    // The sweeper looks every second: a put-back that failed is tried again soon after the API is back.
    t = await startStatefulSetMedic('statefulset-attack', 135, { drainTimeoutSeconds: 600, env: { MEDIC_SWEEP_MS: '1000' } });
    ({ lab, slack } = t);
    cluster = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath).clusters[0]!;
  }, 120_000);
  afterAll(async () => {
    await pool.close?.();
    await t?.stop();
  });

  const PDBS = resourceType('poddisruptionbudgets', 'policy')!;
  const STS = resourceType('statefulsets', 'apps')!;
  const stateInTemplate = () => (lab.store.get(STS, 'kube-etcd', NS) as any).spec.template.spec.containers[0].args.find((a: string) => a.startsWith('--initial-cluster-state='));
  const slackSays = (pattern: RegExp, since: number) => slack.waitFor((r) => pattern.test(JSON.stringify(r.body)), 30_000, since);

  /** Moves a replica's pod to another node: its claim's volume pinned there, the pod deleted and made again by the controller. */
  const moveReplica = async (ordinal: number, node: string) => {
    const name = lab.podName(ordinal);
    const res = await lab.request('PATCH', `/api/v1/namespaces/${NS}/persistentvolumeclaims/data-${name}`, { metadata: { annotations: { 'volume.kubernetes.io/selected-node': node } } }, { 'content-type': 'application/merge-patch+json' });
    expect(res.status).toBe(200);
    await lab.kubectl(['delete', 'pod', name, '-n', NS]);
    await waitFor(`${name} Ready on ${node}`, () => lab.pod(name)?.spec?.nodeName === node && ready(lab.pod(name)), 30_000, 100);
  };

  it('a second member on the failed replica\'s node: the run stops at its read-only check, before the PDB is deleted; the drain refuses too, evicting nobody', async () => {
    // The fault: kube-etcd-2 was scheduled onto admin-node-2, the node of kube-etcd-1 (no anti-affinity holds them apart).
    await moveReplica(2, 'admin-node-2');
    await lab.waitHealthy();
    await lab.failReplica(1);
    const pid2 = lab.pid('kube-etcd-2');
    const pdbBefore = (await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).metadata.uid;

    const { ts } = await planFor('kube-etcd-1');
    await waitForRunStatus(slack, ts, 'FAILED', 30_000).catch(explain(ts));
    const thread = threadOf(slack, ts).join('\n');
    expect(thread).toContain('Step 1 (Check kube-etcd-1\'s pod, node and claim in the admin cluster) failed: refusing to replace kube-etcd-1 this way: node admin-node-2 of kube-etcd-1 also runs kube-etcd-2 of statefulset user1/kube-etcd: draining it would evict that member too');
    expect(thread).toContain('Nothing was changed.');
    expect(thread).not.toContain('Put back:');
    // Nothing touched: the same PDB object, the node schedulable, kube-etcd-2 the same process.
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).metadata.uid).toBe(pdbBefore);
    expect(await unschedulable('admin-node-2')).toBe(false);
    expect(lab.pid('kube-etcd-2')).toBe(pid2);

    // The drain itself looks again right before its cordon (a member may move there after the check).
    const step = { kind: 'drain', title: 'drain', destructive: false, operation: '', params: { place: place('kube-etcd-1') } } as StepOf<'drain'>;
    await expect(drain(ctx(), step)).rejects.toThrow(/refusing to drain: node admin-node-2 of kube-etcd-1 also runs kube-etcd-2 .* Nothing was evicted; the node was not cordoned\./);
    expect(await unschedulable('admin-node-2')).toBe(false);
    expect(lab.pid('kube-etcd-2')).toBe(pid2);
    expect((await lab.memberList()).filter((m) => m.status === 'started')).toHaveLength(3);

    await moveReplica(2, 'admin-node-3');
  });

  it('a drain that cannot finish (another workload\'s PDB holds its pod) ends when the run is cancelled, not at its 600 s bound; the PDB and the state are put back', async () => {
    // Another workload on kube-etcd-1's node, whose own PDB lets none of its pods go.
    const web = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-0', labels: { app: 'web' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'x', controller: true }] },
      spec: { nodeName: 'admin-node-2', containers: [{ name: 'web', image: 'web', command: ['sleep', '300'] }] },
    };
    expect((await lab.request('POST', `/api/v1/namespaces/${NS}/pods`, web)).status).toBe(201);
    expect((await lab.request('POST', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web-pdb' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } } })).status).toBe(201);
    await waitFor('web-0 Ready', () => ready(lab.pod('web-0')), 10_000, 100);

    const { ts, runId } = await planFor('kube-etcd-1');
    expect(await approve(ts, 1)).toContain('Approved step 2');
    // The drain has begun: the node is cordoned, web-0 is held back by its PDB.
    await waitFor('admin-node-2 cordoned by the drain', () => unschedulable('admin-node-2'), 30_000, 100);
    await command(`cancel ${runId}`);
    await waitForRunStatus(slack, ts, 'CANCELLED', 30_000).catch(explain(ts));
    const thread = threadOf(slack, ts).join('\n');
    expect(thread).toContain('Step 5 (Drain the node of kube-etcd-1) was interrupted by the stop request, not completed: the drain of node admin-node-2 was stopped before it finished (the node stays cordoned)');
    expect(thread).toMatch(new RegExp(`:rotating_light: Run \`${runId}\` ended CANCELLED before its last step\\. Put back:`));
    expect(thread).toContain('• PDB kube-etcd-pdb made again as it was saved');
    expect(thread).toContain('• statefulset user1/kube-etcd set back to --initial-cluster-state=new');
    expect(thread).toContain("• :warning: node admin-node-2 is left cordoned, kube-etcd-1's pod Pending: `kubectl uncordon admin-node-2`");
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec.minAvailable).toBe(3);
    expect((await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS)).spec.template.spec.containers[0].args).toContain('--initial-cluster-state=new');
    // Nothing of etcd was touched, and web-0 still runs.
    expect((await lab.memberList()).some((m) => m.name === 'kube-etcd-1')).toBe(true);
    expect(lab.pod('web-0')?.status?.phase).toBe('Running');

    await lab.kubectl(['delete', 'pdb', 'web-pdb', '-n', NS]);
    await lab.kubectl(['delete', 'pod', 'web-0', '-n', NS]);
    await lab.kubectl(['uncordon', 'admin-node-2']);
  });

  it('a PDB made again by someone else while the run had it deleted is left as it is and named as not the saved one; a template patched by someone else meanwhile is set back without losing their change', async () => {
    const runId = 'r-0000a77a';
    const saveDir = join(lab.opts.root, 'backups', 'user1');
    const p = place('kube-etcd-1');
    const del = { kind: 'pdb-delete', title: 'pdb', destructive: true, operation: '', params: { place: p, saveDir } } as StepOf<'pdb-delete'>;
    const run = { runId, steps: [del], records: [{ status: 'running' }] } as unknown as Run;
    const deleted = await pdbDelete(ctx(), del, run);
    run.records[0] = { ...run.records[0]!, status: 'done', output: deleted.output };
    expect(deleted.summary).toContain('saved to');

    // The fault: someone (a person, or an operator of the admin cluster) makes the PDB again, another budget.
    const theirs = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'kube-etcd-pdb' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'kube-etcd' } } } };
    expect((await lab.request('POST', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, theirs)).status).toBe(201);
    const theirUid = (await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).metadata.uid;
    const restore = { ...del, kind: 'pdb-restore' } as unknown as StepOf<'pdb-restore'>;
    const r = await pdbRestore(ctx(), restore, run);
    expect(r.skipped).toBeFalsy();
    expect(r.caveat).toContain('PDB user1/kube-etcd-pdb was made again by someone else, not as this run saved it (now minAvailable 1');
    expect(r.caveat).toContain('saved minAvailable 3');
    expect(r.caveat).toContain(`kubectl -n user1 replace --force -f ${saveDir}/pdb-kube-etcd-pdb.${runId}.json`);
    expect(await undoPdbDelete(ctx(), del, run)).toMatch(/^:warning: PDB user1\/kube-etcd-pdb was made again by someone else/);
    // Theirs is left as they made it.
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec.minAvailable).toBe(1);
    // Put back as it was, by hand as the line says: then it reads as already there.
    // (--force: a PDB is not updated without its resourceVersion, so kubectl deletes theirs and creates the saved one.)
    await lab.kubectl(['replace', '--force', '--validate=false', '-f', `${saveDir}/pdb-kube-etcd-pdb.${runId}.json`]);
    expect((await pdbRestore(ctx(), restore, run)).summary).toBe('PDB user1/kube-etcd-pdb is already there: nothing done');
    // A late worker (its lease lost long ago) that looked at their PDB and deletes now: the object is another one, left alone.
    const k = KubeCluster.forCluster(cluster);
    expect(await deletePdb(k, NS, 'kube-etcd-pdb', theirUid)).toBe('another');
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec.minAvailable).toBe(3);

    // The template on state existing, then someone else's patch: an argument put before the flag (its index moves) and a label.
    const st = { kind: 'sts-initial-state', title: 'sts', destructive: false, operation: '', params: { place: p, value: 'existing' } } as StepOf<'sts-initial-state'>;
    expect((await stsInitialState(ctx(), st)).summary).toContain('--initial-cluster-state=existing');
    const theirPatch = [
      { op: 'add', path: '/spec/template/spec/containers/0/args/0', value: '--log-level=info' },
      { op: 'add', path: '/spec/template/metadata/labels/patched-by', value: 'someone' },
    ];
    await lab.kubectl(['patch', 'sts', 'kube-etcd', '-n', NS, '--type=json', '-p', JSON.stringify(theirPatch)]);
    expect(await undoInitialState(ctx(), st)).toBe('statefulset user1/kube-etcd set back to --initial-cluster-state=new');
    const sts = await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS);
    const args: string[] = sts.spec.template.spec.containers[0].args;
    expect(args[0]).toBe('--log-level=info');
    expect(args.filter((a) => a.startsWith('--initial-cluster-state='))).toEqual(['--initial-cluster-state=new']);
    expect(sts.spec.template.metadata.labels['patched-by']).toBe('someone');
    await lab.kubectl(['patch', 'sts', 'kube-etcd', '-n', NS, '--type=json', '-p', JSON.stringify([{ op: 'remove', path: '/spec/template/spec/containers/0/args/0' }, { op: 'remove', path: '/spec/template/metadata/labels/patched-by' }])]);
  });

  it('the admin API gone in the middle of the drain: the run fails, its put-back fails loudly and the cluster stays locked; once the API is back the sweeper puts back and frees it', async () => {
    const web = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', labels: { app: 'web' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'y', controller: true }] },
      spec: { nodeName: 'admin-node-2', containers: [{ name: 'web', image: 'web', command: ['sleep', '300'] }] },
    };
    expect((await lab.request('POST', `/api/v1/namespaces/${NS}/pods`, web)).status).toBe(201);
    expect((await lab.request('POST', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web-pdb' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } } })).status).toBe(201);
    await waitFor('web-1 Ready', () => ready(lab.pod('web-1')), 10_000, 100);

    const { ts, runId } = await planFor('kube-etcd-1');
    expect(await approve(ts, 1)).toContain('Approved step 2');
    await waitFor('admin-node-2 cordoned by the drain', () => unschedulable('admin-node-2'), 30_000, 100);
    // The fault: the admin cluster's API goes away while the drain waits on web-1.
    await lab.apiDown();
    try {
      await waitForRunStatus(slack, ts, 'FAILED', 30_000).catch(explain(ts));
      await waitFor('the failed put-back said', () => threadOf(slack, ts).some((l) => l.includes('NOT everything it changed could be put back')), 30_000, 100);
      const thread = threadOf(slack, ts).join('\n');
      expect(thread).toMatch(/Step 5 \(Drain the node of kube-etcd-1\) failed: /);
      expect(thread).toContain(':x: statefulset user1/kube-etcd could NOT be set back to --initial-cluster-state=new');
      expect(thread).toContain(':x: PDB user1/kube-etcd-pdb could NOT be made again');
      expect(thread).toContain(`user1 stays locked to this run, so that no new run starts on it half put back`);
      // Left as the run had them, and said so: the PDB deleted, the template on existing.
      expect(lab.store.find(PDBS, 'kube-etcd-pdb', NS)).toBeUndefined();
      expect(stateInTemplate()).toBe('--initial-cluster-state=existing');
      // A new replace does not start on it (it would take the missing PDB for one that never was).
      const since = slack.lastSeq;
      await command('replace kube-etcd-1');
      await slackSays(new RegExp(`run .${runId}. is already working on user1`), since);
    } finally {
      await lab.apiUp();
    }
    // Back: the next sweeps put back what the run changed, say it, and free the cluster.
    await waitFor('the put-back done after the API came back', () => threadOf(slack, ts).some((l) => /Put back:\n• [^\n]*\n?• statefulset user1\/kube-etcd set back to --initial-cluster-state=new\n• PDB kube-etcd-pdb made again as it was saved/.test(l)), 30_000, 200).catch(explain(ts));
    expect(threadOf(slack, ts).filter((l) => l.includes('NOT everything it changed could be put back'))).toHaveLength(1);
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec.minAvailable).toBe(3);
    expect(stateInTemplate()).toBe('--initial-cluster-state=new');
    const since = slack.lastSeq;
    await command(`cancel ${runId}`);
    await slackSays(/has already ended \(failed\); nothing to cancel/, since);

    await lab.kubectl(['delete', 'pdb', 'web-pdb', '-n', NS]);
    await lab.kubectl(['delete', 'pod', 'web-1', '-n', NS]);
    await lab.kubectl(['uncordon', 'admin-node-2']);
  });

  it('a template set back to new by someone else after the run set it to existing: the uncordon refuses (the pod would start a new cluster), the node stays cordoned; set right, the replace ends healthy', async () => {
    const inventory = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath);
    const exec = stepExecutors(inventory, pool, new DirectoryBackupStore(inventory.backups.dir, { inUse: async () => new Map() }), createLogger('silent'));
    const view = await viewCluster(cluster, pool);
    const planned = planReplace(inventory, cluster, view.report, view.state, { runId: 'r-0000b0b0', target: 'kube-etcd-1', force: false, requestedBy: 'UALICE', channelId: 'CINCIDENT' }, new Date());
    if (!planned.ok) throw new Error(planned.reason);
    const run = planned.run;
    const setState = async (from: string, to: string) => {
      const args: string[] = (await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS)).spec.template.spec.containers[0].args;
      const path = `/spec/template/spec/containers/0/args/${args.indexOf(`--initial-cluster-state=${from}`)}`;
      await lab.kubectl(['patch', 'sts', 'kube-etcd', '-n', NS, '--type=json', '-p', JSON.stringify([{ op: 'test', path, value: `--initial-cluster-state=${from}` }, { op: 'replace', path, value: `--initial-cluster-state=${to}` }])]);
    };
    const runStep = async (i: number) => {
      const r = await exec[run.steps[i]!.kind](run, run.steps[i]!, i);
      run.records[i] = { ...run.records[i]!, status: r.skipped ? 'skipped' : 'done', summary: r.summary, output: r.output };
      return r;
    };
    const uncordonAt = run.steps.findIndex((x) => x.kind === 'uncordon');
    for (let i = 0; i < uncordonAt; i++) {
      await runStep(i);
      // The fault: right after the run set the template to existing, someone's patch sets it back to new.
      if (run.steps[i]!.kind === 'sts-initial-state') await setState('existing', 'new');
    }
    // The drain's eviction made kube-etcd-1 again from that template: it waits on the cordoned node with state new.
    const waiting = lab.pod('kube-etcd-1')!;
    expect(waiting.spec.nodeName).toBeUndefined();
    expect(waiting.spec.containers[0].args).toContain('--initial-cluster-state=new');

    await expect(runStep(uncordonAt)).rejects.toThrow(
      "refusing to uncordon node admin-node-2: kube-etcd-1's pod would be made from statefulset user1/kube-etcd's template, which says --initial-cluster-state=new (changed after this run set it to existing, by someone or by a controller): the member would start a new cluster and never join. Nothing was done; the node stays cordoned.",
    );
    expect(await unschedulable('admin-node-2')).toBe(true);
    expect(lab.pod('kube-etcd-1')!.metadata.uid).toBe(waiting.metadata.uid);
    expect(lab.pid('kube-etcd-1')).toBeNull();

    // Set right again: the waiting pod is made again from the template, the member joins, the rest of the run ends healthy.
    await setState('new', 'existing');
    expect((await runStep(uncordonAt)).summary).toContain('so it was deleted and made again from the template');
    for (let i = uncordonAt + 1; i < run.steps.length; i++) await runStep(i);
    await lab.waitHealthy();
    expect((await lab.memberList()).map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual([0, 1, 2].map((i) => `kube-etcd-${i} started voter`));
    expect(stateInTemplate()).toBe('--initial-cluster-state=new');
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec.minAvailable).toBe(3);
  });
});
