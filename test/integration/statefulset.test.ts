import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { createLogger } from '../../src/log.js';
import { parseInventory } from '../../src/config/load.js';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { EtcdPool } from '../../src/etcd/pool.js';
import { planReplace } from '../../src/runbook/replace-plan.js';
import { viewCluster } from '../../src/worker/cluster-view.js';
import { stepExecutors } from '../../src/worker/executors.js';
import { answerAt, latest, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';
import { startStatefulSetMedic, type StatefulSetMedic } from '../support/statefulset-medic.js';
import { portOpen } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import type { StatefulSetLab } from '../../src/lab/statefulset/index.js';
import type { ClusterConfig } from '../../src/config/schema.js';
import { KubeCluster } from '../../src/kube/client.js';
import { drainNode, setUnschedulable } from '../../src/kube/drain.js';
import { KubeError } from '../../src/kube/errors.js';
import { createPdb, deletePdb, getPdb, pdbToRecreate } from '../../src/kube/pdbs.js';
import { createPod, deletePod, getPvc, waitPod } from '../../src/kube/pods.js';
import { getStatefulSet, setTemplateFlag, templateFlag } from '../../src/kube/statefulsets.js';

const NS = 'user1';

describe('etcd as a StatefulSet in an admin cluster (GKE on-prem kubeception): the lab by hand with kubectl and etcdctl, src/kube, and /etcd replace through the bot', () => {
  let lab: StatefulSetLab;
  const kubectlJson = async (...args: string[]) => JSON.parse((await lab.kubectl([...args, '-o', 'json'])).stdout);
  const ready = (p: any) => (p?.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
  const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

  // The bot and a worker on the lab's inventory, a fake Slack, signed requests.
  let t: StatefulSetMedic;
  let slack: FakeSlack;
  const command = (text: string, user = 'UALICE') => t.command(text, user);
  const gateClick = async (user: string, ts: string, step: number, which: 'approve' | 'reject') => {
    const g = await waitForGate(slack, ts, step);
    const c = await t.click({ user, messageTs: ts, actionId: which === 'approve' ? 'medic_approve' : 'medic_reject', blockId: g.blockId, value: which === 'approve' ? g.approve : g.reject });
    return answerAt(slack, c.responseUrl);
  };
  const planFor = async (member: string) => {
    const since = slack.lastSeq;
    await command(`replace ${member}`);
    const plan = await slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace \S+ in user1/.test(String(r.body.text)), 60_000, since);
    return { ts: plan.ts!, runId: /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]! };
  };

  beforeAll(async () => {
    // Drains here take well under a second; the bound is short so a drain that cannot finish fails fast.
    t = await startStatefulSetMedic('statefulset', 114, { drainTimeoutSeconds: 5 });
    ({ lab, slack } = t);
  }, 90_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('runs each kube-etcd pod as etcd on its own address with the template arguments, its name substituted, its claim a directory', async () => {
    const pods = (await lab.kubectl(['get', 'pods', '-n', NS])).stdout;
    for (const i of [0, 1, 2]) expect(pods).toMatch(new RegExp(`^kube-etcd-${i}\\s+1/1\\s+Running\\s+0\\s`, 'm'));
    expect((await lab.kubectl(['get', 'sts', '-n', NS])).stdout).toMatch(/^kube-etcd\s+3\/3\s/m);
    expect((await lab.kubectl(['get', 'pvc', '-n', NS])).stdout).toMatch(/^data-kube-etcd-1\s+Bound\s+\S+\s+1Gi\s+RWO\s+local\s/m);
    const argv = cmdline(lab.pid('kube-etcd-1')!);
    expect(argv).toContain('--name=kube-etcd-1');
    expect(argv).toContain(`--listen-client-urls=https://${lab.podIp(1)}:2379`);
    expect(argv).toContain(`--data-dir=${lab.claimDir('data-kube-etcd-1')}`);
    expect(argv).toContain('--initial-cluster-state=new');
    expect(existsSync(join(lab.claimDir('data-kube-etcd-1'), 'member/snap'))).toBe(true);
    expect((await lab.memberList()).map((m) => [m.name, m.client]).sort()).toEqual([0, 1, 2].map((i) => [`kube-etcd-${i}`, `https://${lab.podIp(i)}:2379`]));
    const pod = await kubectlJson('get', 'pod', 'kube-etcd-2', '-n', NS);
    expect(pod.spec.nodeName).toBe('admin-node-3');
    expect(pod.metadata.ownerReferences[0]).toMatchObject({ kind: 'StatefulSet', name: 'kube-etcd', controller: true });
  });

  it('replaces a failed replica by hand: PDB saved and deleted, state existing, drain, member remove, utility pod wipe, learner add, uncordon, promote, all restored', async () => {
    for (let i = 0; i < 20; i++) await lab.etcdctl(['put', `/by-hand/${i}`, `v${i}`]);
    await lab.failReplica(1);
    const failedId = (await lab.memberList()).find((m) => m.name === 'kube-etcd-1')!.id;

    // While a replica is down the PDB lets no pod go: the drain cannot evict the failed one either.
    const saved = (await lab.kubectl(['get', 'pdb', 'kube-etcd-pdb', '-n', NS, '-o', 'yaml'])).stdout;
    const held = await lab.kubectl(['drain', 'admin-node-2', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=1s'], { allowFail: true });
    expect(held.code).not.toBe(0);
    expect(held.stdout + held.stderr).toContain("Cannot evict pod as it would violate the pod's disruption budget.");
    await lab.kubectl(['delete', 'pdb', 'kube-etcd-pdb', '-n', NS]);
    const sts = await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS);
    const at = sts.spec.template.spec.containers[0].args.indexOf('--initial-cluster-state=new');
    const path = `/spec/template/spec/containers/0/args/${at}`;
    await lab.kubectl(['patch', 'sts', 'kube-etcd', '-n', NS, '--type=json', '-p', JSON.stringify([{ op: 'test', path, value: '--initial-cluster-state=new' }, { op: 'replace', path, value: '--initial-cluster-state=existing' }])]);
    // OnDelete: the running members keep their process.
    const pid0 = lab.pid('kube-etcd-0');

    const oldUid = (await kubectlJson('get', 'pod', 'kube-etcd-1', '-n', NS)).metadata.uid;
    const drained = await lab.kubectl(['drain', 'admin-node-2', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=20s']);
    expect(drained.stdout).toContain('pod/kube-etcd-1 evicted');
    // The controller makes the pod again at once; its claim's volume is on the cordoned node, so it stays Pending.
    const pending = await waitFor('kube-etcd-1 made again, Pending', async () => {
      const p = await kubectlJson('get', 'pod', 'kube-etcd-1', '-n', NS);
      return p.metadata.uid !== oldUid && p.status.conditions?.some((c: any) => c.type === 'PodScheduled' && c.reason === 'Unschedulable') ? p : null;
    }, 10_000, 200);
    expect(pending.status.phase).toBe('Pending');
    expect(lab.pid('kube-etcd-1')).toBeNull();
    expect(lab.pid('kube-etcd-0')).toBe(pid0);

    await lab.etcdctl(['member', 'remove', failedId], [lab.endpoints[0]!]);

    // The utility pod: bound to the node by name (the scheduler's cordon does not apply), the claim mounted where etcd has it.
    const utility = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'etcd-utility-1', namespace: NS },
      spec: {
        nodeName: 'admin-node-2',
        restartPolicy: 'Never',
        containers: [{ name: 'utility', image: 'busybox', command: ['sh', '-c', 'mv /var/lib/etcd/member /var/lib/etcd/member.before-by-hand && ls /var/lib/etcd'], volumeMounts: [{ name: 'data', mountPath: '/var/lib/etcd' }] }],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-kube-etcd-1' } }],
      },
    };
    await lab.kubectl(['create', '--validate=false', '-f', '-'], { input: JSON.stringify(utility) });
    await waitFor('the utility pod Succeeded', async () => (await kubectlJson('get', 'pod', 'etcd-utility-1', '-n', NS)).status.phase === 'Succeeded', 10_000, 200);
    expect(existsSync(join(lab.claimDir('data-kube-etcd-1'), 'member'))).toBe(false);
    expect(existsSync(join(lab.claimDir('data-kube-etcd-1'), 'member.before-by-hand/snap/db'))).toBe(true);
    await lab.kubectl(['delete', 'pod', 'etcd-utility-1', '-n', NS]);

    await lab.etcdctl(['member', 'add', 'kube-etcd-1', `--peer-urls=https://${lab.podIp(1)}:2380`, '--learner'], [lab.endpoints[0]!]);
    await lab.kubectl(['uncordon', 'admin-node-2']);
    await waitFor('kube-etcd-1 Ready', async () => ready(await kubectlJson('get', 'pod', 'kube-etcd-1', '-n', NS)), 20_000, 200);
    expect(cmdline(lab.pid('kube-etcd-1')!)).toContain('--initial-cluster-state=existing');
    const learner = (await lab.memberList()).find((m) => m.name === 'kube-etcd-1')!;
    expect(learner.learner).toBe(true);
    await waitFor('the learner promoted', async () => (await lab.etcdctl(['member', 'promote', learner.id], [lab.endpoints[0]!], true)).code === 0, 20_000, 300);

    await lab.kubectl(['patch', 'sts', 'kube-etcd', '-n', NS, '--type=json', '-p', JSON.stringify([{ op: 'replace', path, value: '--initial-cluster-state=new' }])]);
    // The saved PDB as `get -o yaml` wrote it: the server refuses an object that carries a resourceVersion, so it goes without.
    const pdb = parseYaml(saved);
    for (const k of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields']) delete pdb.metadata[k];
    delete pdb.status;
    await lab.kubectl(['create', '--validate=false', '-f', '-'], { input: JSON.stringify(pdb) });
    const back = await waitFor('the PDB back with its status', async () => {
      const p = await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS);
      return p.status?.currentHealthy === 3 ? p : null;
    }, 10_000, 200);
    expect(back.status).toMatchObject({ desiredHealthy: 3, expectedPods: 3, disruptionsAllowed: 0 });
    await lab.waitHealthy();
    const got = await lab.etcdctl(['get', '/by-hand/', '--prefix', '--keys-only'], [lab.endpoints[1]!]);
    expect(got.stdout.trim().split('\n').filter(Boolean)).toHaveLength(20);
    expect(await portOpen(lab.podIp(1), 2379)).toBe(true);
  });

  it('src/kube against it: PDB saved, deleted and made again; a template flag patched once; a drain held by the PDB within its bound; a utility pod to Succeeded', async () => {
    const k = KubeCluster.forCluster({ name: 'user1', kubeconfig: lab.kubeconfig } as unknown as ClusterConfig);
    const pdb = (await getPdb(k, NS, 'kube-etcd-pdb'))!;
    expect(pdb.spec?.minAvailable).toBe(3);
    const saved = pdbToRecreate(pdb);
    expect(saved.metadata).toEqual({ name: 'kube-etcd-pdb', namespace: NS, labels: { app: 'kube-etcd' } });

    // The PDB wants all three: the drain evicts nothing and gives up at its bound, naming what held it.
    const t0 = Date.now();
    const err = await drainNode(k, 'admin-node-3', { timeoutMs: 1500, everyMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).reason).toContain(`node admin-node-3 not drained within 2 s: ${NS}/kube-etcd-2 (too many requests (429): Cannot evict pod as it would violate the pod's disruption budget.)`);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(lab.pid('kube-etcd-2')).not.toBeNull();
    expect(await setUnschedulable(k, 'admin-node-3', true)).toBe('already');
    expect(await setUnschedulable(k, 'admin-node-3', false)).toBe('changed');
    expect(await setUnschedulable(k, 'admin-node-3', false)).toBe('already');

    expect(await deletePdb(k, NS, 'kube-etcd-pdb')).toBe('deleted');
    expect(await deletePdb(k, NS, 'kube-etcd-pdb')).toBe('already-gone');
    expect(await getPdb(k, NS, 'kube-etcd-pdb')).toBeNull();
    expect(await createPdb(k, JSON.parse(JSON.stringify(saved)))).toBe('created');
    expect(await createPdb(k, saved)).toBe('already-there');
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec).toEqual(pdb.spec);

    const sts = (await getStatefulSet(k, NS, 'kube-etcd'))!;
    expect(templateFlag(sts, 'kube-etcd', 'initial-cluster-state')).toMatchObject({ list: 'args', value: 'new' });
    expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'existing')).toBe('patched');
    expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'existing')).toBe('already');
    const args = (await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS)).spec.template.spec.containers[0].args;
    expect(args).toContain('--initial-cluster-state=existing');
    expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'new')).toBe('patched');

    expect((await getPvc(k, NS, 'data-kube-etcd-0'))?.status?.phase).toBe('Bound');
    expect(await getPvc(k, NS, 'data-kube-etcd-9')).toBeNull();
    const pod = {
      metadata: { name: 'etcd-utility-0', namespace: NS },
      spec: {
        nodeName: 'admin-node-1',
        restartPolicy: 'Never',
        containers: [{ name: 'utility', image: 'busybox', command: ['sh', '-c', 'test -d /var/lib/etcd/member && exit 3'], terminationMessagePolicy: 'FallbackToLogsOnError', volumeMounts: [{ name: 'data', mountPath: '/var/lib/etcd' }] }],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-kube-etcd-0' } }],
      },
    };
    expect(await createPod(k, NS, pod)).toBe('created');
    expect(await createPod(k, NS, pod)).toBe('already-there');
    const done = await waitPod(k, NS, 'etcd-utility-0', { phases: ['Succeeded', 'Failed'] }, 10_000);
    expect(done.status?.phase).toBe('Failed');
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(3);
    expect(await deletePod(k, NS, 'etcd-utility-0')).toBe('deleted');
    expect(await deletePod(k, NS, 'etcd-utility-0')).toBe('already-gone');
  });

  it("/etcd replace of a failed replica: the seed's steps through the admin cluster API, three approvals, every key on the new member, PDB and state back", async () => {
    for (let i = 0; i < 50; i++) await lab.etcdctl(['put', `/bot/${i}`, `v${i}`]);
    const pdbBefore = (await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec;
    const oldId = (await lab.memberList()).find((m) => m.name === 'kube-etcd-2')!.id;
    await lab.failReplica(2);
    const t0 = Date.now();
    const { ts, runId } = await planFor('kube-etcd-2');
    const plan = textOf(latest(slack, ts));
    expect(plan).toContain('kubectl -n user1 delete pdb kube-etcd-pdb');
    expect(plan).toContain(`cluster.memberRemove(${oldId})`);
    // Three gates: the PDB's delete, the member's remove, its data moved aside.
    for (const step of [1, 5, 6]) {
      const answer = await gateClick('UBOB', ts, step, 'approve').catch((err: Error) => {
        throw new Error(`${err.message}\n--- thread ---\n${threadOf(slack, ts).join('\n')}`);
      });
      expect(answer).toContain(`Approved step ${step + 1}`);
    }
    const done = await waitForRunStatus(slack, ts, 'DONE', 90_000).catch((err: Error) => {
      throw new Error(`${err.message}\n--- thread ---\n${threadOf(slack, ts).join('\n')}`);
    });
    const took = Date.now() - t0;
    const thread = threadOf(slack, ts).join('\n');
    expect(thread).toMatch(/Step 1: Check kube-etcd-2's pod, node and claim in the admin cluster: admin cluster API 127\.0\.114\.100:6443 answers; pod kube-etcd-2 Running, not Ready, \d+ restarts on node admin-node-3; claim data-kube-etcd-2 Bound; PDB kube-etcd-pdb present \(minAvailable 3, 0 disruptions allowed\)/);
    expect(thread).toContain(`Step 5: Drain the node of kube-etcd-2: node admin-node-3 drained: cordoned; evicted user1/kube-etcd-2`);
    expect(done).toContain('approved by <@UBOB>');

    const members = await lab.memberList();
    expect(members.map((m) => [m.name, m.status, m.learner]).sort()).toEqual([0, 1, 2].map((i) => [`kube-etcd-${i}`, 'started', false]));
    expect(members.find((m) => m.name === 'kube-etcd-2')!.id).not.toBe(oldId);
    const keys = await lab.etcdctl(['get', '/bot/', '--prefix', '--keys-only', '--consistency=s'], [lab.endpoints[2]!]);
    expect(keys.stdout.split('\n').filter(Boolean)).toHaveLength(50);
    // Back as it was: the PDB (same spec), the template on state new, the node schedulable, no utility pod; the broken data kept aside on the claim.
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec).toEqual(pdbBefore);
    expect((await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS)).spec.template.spec.containers[0].args).toContain('--initial-cluster-state=new');
    expect((await kubectlJson('get', 'node', 'admin-node-3')).spec.unschedulable).toBeUndefined();
    expect(lab.pod('etcd-utility-2')).toBeUndefined();
    expect(readFileSync(join(lab.claimDir('data-kube-etcd-2'), `before-${runId}`, 'member/snap/db'))[0]).toBe(0x5a);
    expect(cmdline(lab.pid('kube-etcd-2')!)).toContain('--initial-cluster-state=existing');
    console.log(`statefulset replace through the bot: ${(took / 1000).toFixed(1)} s`);
  });

  it('a run rejected at the member remove, and one cancelled at the wipe, put back the PDB and the StatefulSet state, loudly; a third run finishes the replace from where they left it', async () => {
    const pdbBefore = (await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec;
    await lab.failReplica(0);
    const backAsBefore = async () => {
      expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec).toEqual(pdbBefore);
      expect((await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS)).spec.template.spec.containers[0].args).toContain('--initial-cluster-state=new');
    };

    const first = await planFor('kube-etcd-0');
    expect(await gateClick('UBOB', first.ts, 1, 'approve')).toContain('Approved step 2');
    // The fault: the approver rejects the member remove, after the PDB was deleted, the state set to existing and the node drained.
    await gateClick('UBOB', first.ts, 5, 'reject');
    await waitForRunStatus(slack, first.ts, 'REJECTED', 30_000);
    let thread = threadOf(slack, first.ts).join('\n');
    expect(thread).toMatch(new RegExp(`:rotating_light: Run \`${first.runId}\` ended REJECTED before its last step\\. Put back:`));
    expect(thread).toContain('• statefulset user1/kube-etcd set back to --initial-cluster-state=new');
    expect(thread).toContain('• PDB kube-etcd-pdb made again as it was saved');
    expect(thread).toContain('• :warning: node admin-node-1 is left cordoned, kube-etcd-0\'s pod Pending: `kubectl uncordon admin-node-1`');
    await backAsBefore();
    expect((await lab.memberList()).some((m) => m.name === 'kube-etcd-0')).toBe(true);

    const second = await planFor('kube-etcd-0');
    expect(await gateClick('UBOB', second.ts, 1, 'approve')).toContain('Approved step 2');
    expect(await gateClick('UBOB', second.ts, 5, 'approve')).toContain('Approved step 6');
    await waitForGate(slack, second.ts, 6);
    // The fault: someone cancels while the wipe waits for its approval; the member is removed by then.
    await command(`cancel ${second.runId}`);
    await waitForRunStatus(slack, second.ts, 'CANCELLED', 30_000);
    thread = threadOf(slack, second.ts).join('\n');
    expect(thread).toMatch(new RegExp(`:rotating_light: Run \`${second.runId}\` ended CANCELLED before its last step\\. Put back:`));
    expect(thread).toContain('• PDB kube-etcd-pdb made again as it was saved');
    await backAsBefore();
    expect((await lab.memberList()).some((m) => m.name === 'kube-etcd-0')).toBe(false);
    // What the cancelled run saved of the PDB is in the backups beside its snapshot.
    expect(JSON.parse(readFileSync(join(lab.opts.root, 'backups', 'user1', `pdb-kube-etcd-pdb.${second.runId}.json`), 'utf8')).spec).toEqual(pdbBefore);

    // Planned again on what is there now: no member to remove, the node already cordoned.
    const third = await planFor('kube-etcd-0');
    expect(textOf(latest(slack, third.ts))).not.toContain('cluster.memberRemove(');
    expect(await gateClick('UBOB', third.ts, 1, 'approve')).toContain('Approved step 2');
    expect(await gateClick('UBOB', third.ts, 5, 'approve')).toContain('Approved step 6');
    await waitForRunStatus(slack, third.ts, 'DONE', 30_000).catch(async (err: Error) => {
      const log = readFileSync(join(lab.opts.root, 'logs', `${NS}_kube-etcd-0.log`), 'utf8').split('\n').filter((l) => / [ECNW] \| /.test(l) && !/Deprecated|invalid file/.test(l)).slice(-40).join('\n');
      const members = await lab.etcdctl(['member', 'list', '-w', 'table'], [lab.endpoints[1]!], true);
      throw new Error(`${err.message.slice(0, 500)}\n--- kube-etcd-0 log ---\n${log}\n--- members ---\n${members.stdout}${members.stderr}\npod: ${JSON.stringify(lab.pod('kube-etcd-0')?.spec?.containers?.[0]?.args)} ${JSON.stringify(lab.pod('kube-etcd-0')?.metadata)}`);
    });
    expect(threadOf(slack, third.ts).join('\n')).toContain('Step 5: Drain the node of kube-etcd-0: node admin-node-1 drained: already cordoned; nothing left to evict');
    await backAsBefore();
    await lab.waitHealthy();
    expect((await lab.memberList()).map((m) => [m.name, m.status, m.learner]).sort()).toEqual([0, 1, 2].map((i) => [`kube-etcd-${i}`, 'started', false]));
  });

  it('each step run twice, as when its worker dies after it acted and before it was recorded: the second time finds the work done and does nothing; the replace ends healthy', async () => {
    await lab.failReplica(1);
    const inventory = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath);
    const cluster = inventory.clusters[0]!;
    const pool = new EtcdPool();
    const exec = stepExecutors(inventory, pool, new DirectoryBackupStore(inventory.backups.dir, { inUse: async () => new Map() }), createLogger('silent'));
    const view = await viewCluster(cluster, pool);
    const planned = planReplace(inventory, cluster, view.report, view.state, { runId: 'r-0000cafe', target: 'kube-etcd-1', force: false, requestedBy: 'UALICE', channelId: 'CINCIDENT' }, new Date());
    if (!planned.ok) throw new Error(planned.reason);
    const run = planned.run;
    const second: string[] = [];
    for (const [i, step] of run.steps.entries()) {
      const first = await exec[step.kind](run, step, i);
      run.records[i] = { ...run.records[i]!, status: first.skipped ? 'skipped' : 'done', summary: first.summary, output: first.output };
      // The fault: the worker died before recording the step; its job runs again.
      const again = await exec[step.kind](run, step, i);
      second.push(`${i + 1} ${step.kind}: ${again.skipped ? 'skipped' : 'ran'}`);
    }
    const ran = second.filter((l) => l.endsWith(': ran'));
    // Only the steps that read and change nothing run again in full.
    expect(ran).toEqual(['1 workload-check: ran', '10 wait-caught-up: ran', '12 verify: ran']);
    await lab.waitHealthy();
    expect((await lab.memberList()).map((m) => [m.name, m.status, m.learner]).sort()).toEqual([0, 1, 2].map((i) => [`kube-etcd-${i}`, 'started', false]));
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec.minAvailable).toBe(3);
    expect((await kubectlJson('get', 'sts', 'kube-etcd', '-n', NS)).spec.template.spec.containers[0].args).toContain('--initial-cluster-state=new');
    // One aside dir: the second wipe moved nothing.
    expect(readdirSync(lab.claimDir('data-kube-etcd-1')).filter((f) => f.startsWith('before-r-0000cafe'))).toEqual(['before-r-0000cafe']);
    await pool.close?.();
  });

  it('refuses bad input as on the other profiles; a drain held back by another PDB fails at its bound, and the run puts the PDB and the state back', async () => {
    const refusal = async (text: string) => {
      const since = slack.lastSeq;
      const r = await command(text);
      const ack = JSON.stringify(r.body ?? '') + String((r as { text?: string }).text ?? '');
      const msg = await slack.waitFor((x) => (x.kind === 'response_url' || x.method === 'chat.postMessage') && /refus|no member|healthy|not a member|usage/i.test(JSON.stringify(x.body)), 30_000, since).catch(() => null);
      return `${ack} ${msg ? JSON.stringify(msg.body) : ''}`;
    };
    expect(await refusal('replace no-such-member')).toMatch(/no member .{0,4}no-such-member.{0,4} in user1/);
    expect(await refusal('replace kube-etcd-0')).toContain('is healthy');
    expect(await refusal('replace kube-etcd-0;rm')).toContain('is not a member name');

    // Another workload on the failed replica's node, whose own PDB lets none of its pods go.
    const web = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-0', labels: { app: 'web' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'x', controller: true }] },
      spec: { nodeName: 'admin-node-2', containers: [{ name: 'web', image: 'web', command: ['sleep', '300'] }] },
    };
    expect((await lab.request('POST', `/api/v1/namespaces/${NS}/pods`, web)).status).toBe(201);
    await lab.request('POST', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web-pdb' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } } });
    await waitFor('web-0 Ready', () => ready(lab.pod('web-0')), 10_000, 100);
    await lab.failReplica(1);
    const { ts, runId } = await planFor('kube-etcd-1');
    expect(await gateClick('UBOB', ts, 1, 'approve')).toContain('Approved step 2');
    await waitForRunStatus(slack, ts, 'FAILED', 30_000);
    const thread = threadOf(slack, ts).join('\n');
    expect(thread).toContain(`Step 5 (Drain the node of kube-etcd-1) failed: node admin-node-2 not drained within 5 s: ${NS}/web-0 (too many requests (429): Cannot evict pod as it would violate the pod's disruption budget.)`);
    expect(thread).toMatch(new RegExp(`:rotating_light: Run \`${runId}\` ended FAILED before its last step\\. Put back:`));
    expect(thread).toContain('• PDB kube-etcd-pdb made again as it was saved');
    expect(thread).toContain('• statefulset user1/kube-etcd set back to --initial-cluster-state=new');
    expect((await kubectlJson('get', 'pdb', 'kube-etcd-pdb', '-n', NS)).spec.minAvailable).toBe(3);
    // Nothing of etcd was touched: the member is still listed.
    expect((await lab.memberList()).some((m) => m.name === 'kube-etcd-1')).toBe(true);
    await lab.kubectl(['delete', 'pdb', 'web-pdb', '-n', NS]);
    await lab.kubectl(['delete', 'pod', 'web-0', '-n', NS]);
  });
});
