import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { parseInventory } from '../../src/config/load.js';
import type { ClusterConfig, Inventory } from '../../src/config/schema.js';
import { EtcdPool } from '../../src/etcd/pool.js';
import { KubeCluster } from '../../src/kube/client.js';
import { setTemplateFlag } from '../../src/kube/statefulsets.js';
import { resourceType, type KubeObject } from '../../src/lab/kube/store.js';
import { startStatefulSetLab, type StatefulSetLab } from '../../src/lab/statefulset/index.js';
import { createLogger } from '../../src/log.js';
import { platformOf } from '../../src/platform/index.js';
import { connectRedis } from '../../src/queue/redis.js';
import { processStep, putBackAndFree, type EngineDeps, type StepExecutor } from '../../src/runbook/engine.js';
import { newRun } from '../../src/runbook/new-run.js';
import { RunStore } from '../../src/runbook/store.js';
import type { ObservedState, Run, StepKind, StepSpec } from '../../src/runbook/types.js';
import { stsInitialStateStep } from '../../src/steps/sts-initial-state.js';
import { verifyStep } from '../../src/steps/verify.js';
import { stepExecutors, stepUndo } from '../../src/worker/executors.js';
import { memoryLedger } from '../support/ledger.js';

const NS = 'user1';
const FLAG = '--initial-cluster-state=';
const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 1, revision: 1, at: new Date().toISOString() };
// A step between the two template patches (the run's etcd steps), run by a stand-in executor.
const between: StepSpec = verifyStep.spec({ runbook: 'replace', voters: 3, minRevision: 1 });

describe('a late worker on the StatefulSet template (its step taken over and the run gone on without it)', () => {
  let lab: StatefulSetLab;
  let inventory: Inventory;
  let cluster: ClusterConfig;
  const pool = new EtcdPool();
  const prefix = `t-sts-late-${randomBytes(3).toString('hex')}`;
  const redis = connectRedis(inject('redisUrl'), { forWorker: true });
  // Every value the template's flag took, as the admin cluster's API stored it: each write once, whoever made it.
  const flags: string[] = [];
  let unwatch: () => void = () => undefined;
  const STS = resourceType('statefulsets', 'apps')!;
  const flagOf = (o: KubeObject): string => ((o as any).spec.template.spec.containers[0].args as string[]).find((a) => a.startsWith(FLAG))!.slice(FLAG.length);

  beforeAll(async () => {
    lab = await startStatefulSetLab({ root: join(inject('labRoot'), 'statefulset-late-worker'), subnet: 152 });
    inventory = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath);
    cluster = inventory.clusters[0]!;
    let last = flagOf(lab.store.get(STS, 'kube-etcd', NS));
    unwatch = lab.store.watch(STS, undefined, lab.store.resourceVersion, (_type, o) => {
      const now = flagOf(o);
      if (now !== last) flags.push((last = now));
    });
  }, 90_000);
  afterAll(async () => {
    unwatch();
    redis.disconnect();
    await pool.close?.();
    await lab?.stop();
  });

  const liveFlag = () => flagOf(lab.store.get(STS, 'kube-etcd', NS));
  const place = () => platformOf(cluster).workload!(cluster.members.find((m) => m.name === 'kube-etcd-1')!);
  const exec = () => stepExecutors(inventory, pool, new DirectoryBackupStore(inventory.backups.dir, { inUse: async () => new Map() }), createLogger('silent'));

  function engine(store: RunStore, executors: Partial<Record<StepKind, StepExecutor>>, said: string[]): EngineDeps {
    const notify = { planChanged: async () => undefined, thread: async (_r: Run, t: string) => void said.push(t), record: async (_r: Run, t: string) => void said.push(t) };
    return { store, executors: executors as Record<StepKind, StepExecutor>, observe: async () => state, notify, enqueueStep: async () => undefined, approvalTtlMs: 60_000, now: () => new Date(), log: createLogger('silent'), hmacKey: 'sts-late-worker-key', ledger: memoryLedger('sts-late-worker-key').ledger };
  }

  it('a worker paused past its lease, resumed before its own lease timer noticed, does not set the template back to existing after the run set it to new', async () => {
    expect(liveFlag()).toBe('new');
    flags.length = 0;
    const store = new RunStore(redis, prefix);
    const runId = `r-${randomBytes(4).toString('hex')}`;
    const steps = [stsInitialStateStep.spec({ place: place(), value: 'existing' }), between, stsInitialStateStep.spec({ place: place(), value: 'new' })];
    const run = newRun(inventory, { runId, runbook: 'replace', title: 't', cluster: cluster.name, target: 'kube-etcd-1', steps, plannedState: state, requestedBy: 'UALICE', channelId: 'C' }, new Date());
    expect(await store.createLocked(run)).toBeNull();
    const real = exec();

    // Worker A starts step 1 (existing) and stops right there: a long pause (GC, SIGSTOP, a VM frozen).
    let paused!: () => void;
    const aPaused = new Promise<void>((r) => (paused = r));
    let resume!: () => void;
    const aResumes = new Promise<void>((r) => (resume = r));
    const pausedPatch: StepExecutor = async (...args) => {
      paused();
      await aResumes;
      return real['sts-initial-state'](...args);
    };
    const saidA: string[] = [];
    // What Redis answered A when it asked, before its write, whether the step was still its own.
    const answers: (string | null)[] = [];
    const storeA = new (class extends RunStore {
      override async stepOwner(id: string, index: number, token: string) {
        const why = await super.stepOwner(id, index, token);
        answers.push(why);
        return why;
      }
    })(redis, prefix);
    // A's lease is long enough that its own renewal timer does not fire before it resumes: only Redis can tell it.
    const a = storeA.withRunLease(runId, 'worker-A', 30_000, (lease) => processStep(runId, 0, engine(storeA, { 'sts-initial-state': pausedPatch }, saidA), lease));
    await aPaused;
    // The fault: A's lease expires in Redis while A is paused (as PX would once its 30 s passed with no renewal).
    await redis.del(`${prefix}:runexec:${runId}`);

    // Worker B takes the step over and goes on: the template to existing, the step between, the template back to new.
    const fast: StepExecutor = async () => ({ summary: 'verified by B' });
    for (const i of [0, 1, 2]) {
      const res = await store.withRunLease(runId, 'worker-B', 10_000, (lease) => processStep(runId, i, engine(store, { 'sts-initial-state': real['sts-initial-state'], verify: fast }, []), lease));
      expect(res.ok).toBe(true);
    }
    const afterB = (await store.get(runId))!;
    expect(afterB.status).toBe('done');
    expect(flags).toEqual(['existing', 'new']);

    // A resumes: its patch would be new → existing, and `new` is what it would test for. It must not be sent.
    resume();
    expect((await a).ok).toBe(true);
    expect(liveFlag()).toBe('new');
    expect(flags).toEqual(['existing', 'new']);
    expect(answers).toEqual(['the run lease is no longer its own (lapsed, or taken by another worker)']);
    // Nothing of A's is recorded: the run is as B left it, and A said nothing in the thread.
    expect(await store.get(runId)).toEqual(afterB);
    expect(saidA.filter((s) => /failed|Step 1:/.test(s))).toEqual([]);
  });

  it("a patch read before another worker's two patches is refused, though the flag reads as it did (the spec's generation is tested, not only the value)", async () => {
    expect(liveFlag()).toBe('new');
    flags.length = 0;
    const k = KubeCluster.forCluster(cluster);
    // The fault, between this worker's look (the flag new) and its patch: another worker takes the run on, existing then new.
    const otherWorker = async () => {
      expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'existing')).toBe('patched');
      expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'new')).toBe('patched');
    };
    const late = await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'existing', { beforeWrite: otherWorker }).catch((err: Error) => err);
    expect(late).toBeInstanceOf(Error);
    expect((late as Error).message).toMatch(/kube-etcd changed between the look and the patch \(its spec is no longer generation \d+ with --initial-cluster-state=new\): --initial-cluster-state=existing was not written/);
    expect(liveFlag()).toBe('new');
    expect(flags).toEqual(['existing', 'new']);
    // A status write (the controller makes them all the time) between the look and the patch moves the resourceVersion,
    // not the generation: the patch goes through.
    const before = lab.store.get(STS, 'kube-etcd', NS).metadata;
    const statusWrite = async () => {
      const r = await lab.request('PATCH', `/apis/apps/v1/namespaces/${NS}/statefulsets/kube-etcd/status`, { status: { collisionCount: 7 } }, { 'Content-Type': 'application/merge-patch+json' });
      expect(r.status).toBe(200);
      const now = lab.store.get(STS, 'kube-etcd', NS).metadata;
      expect([now.resourceVersion !== before.resourceVersion, now.generation]).toEqual([true, before.generation]);
    };
    expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'existing', { beforeWrite: statusWrite })).toBe('patched');
    expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'new')).toBe('patched');
    expect(flags).toEqual(['existing', 'new', 'existing', 'new']);
  });

  it("a put-back sent after the cluster was freed and a new run set the template to existing leaves the new run's template alone", async () => {
    expect(liveFlag()).toBe('new');
    flags.length = 0;
    const store = new RunStore(redis, prefix);
    const runId = `r-${randomBytes(4).toString('hex')}`;
    const steps = [stsInitialStateStep.spec({ place: place(), value: 'existing' }), between];
    const run = newRun(inventory, { runId, runbook: 'replace', title: 't', cluster: cluster.name, target: 'kube-etcd-1', steps, plannedState: state, requestedBy: 'UALICE', channelId: 'C' }, new Date());
    expect(await store.createLocked(run)).toBeNull();
    const k = KubeCluster.forCluster(cluster);
    // The run set the template to existing, then failed at its next step.
    await store.withRunLease(runId, 'worker-A', 10_000, (lease) => processStep(runId, 0, engine(store, { 'sts-initial-state': exec()['sts-initial-state'] }, []), lease));
    expect(liveFlag()).toBe('existing');
    const broken: StepExecutor = async () => {
      throw new Error('the etcd leader is gone');
    };
    const said: string[] = [];
    const undo = stepUndo(inventory, pool, new DirectoryBackupStore(inventory.backups.dir, { inUse: async () => new Map() }), createLogger('silent'), store);
    await store.withRunLease(runId, 'worker-A', 10_000, (lease) => processStep(runId, 1, { ...engine(store, { verify: broken }, said), undoOnEnd: undo }, lease));
    const failed = (await store.get(runId))!;
    expect(failed.status).toBe('failed');
    expect(said.join('\n')).toContain('• statefulset user1/kube-etcd set back to --initial-cluster-state=new');
    expect(await store.lockHolder(cluster.name)).toBeNull();
    // A new run on the freed cluster sets the template to existing.
    const next = newRun(inventory, { runId: `r-${randomBytes(4).toString('hex')}`, runbook: 'replace', title: 't', cluster: cluster.name, target: 'kube-etcd-1', steps, plannedState: state, requestedBy: 'UALICE', channelId: 'C' }, new Date());
    expect(await store.createLocked(next)).toBeNull();
    expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'existing')).toBe('patched');
    // The fault: a second put-back of the first run arrives late (a worker that started one before the lock was freed, and paused).
    const lateSaid: string[] = [];
    const freed = await putBackAndFree(failed, { store, undoOnEnd: undo, notify: engine(store, {}, lateSaid).notify, log: createLogger('silent') });
    expect(freed).toBe(false);
    expect(liveFlag()).toBe('existing');
    expect(flags).toEqual(['existing', 'new', 'existing']);
    expect(lateSaid.join('\n')).toMatch(/statefulset user1\/kube-etcd left as it is: the patch of statefulset user1\/kube-etcd back to --initial-cluster-state=new was not sent: the cluster is no longer locked to the run/);
    expect(await store.lockHolder(cluster.name)).toBe(next.runId);
    // The new run's own end puts it back.
    expect(await setTemplateFlag(k, NS, 'kube-etcd', 'kube-etcd', 'initial-cluster-state', 'new')).toBe('patched');
  });
});
