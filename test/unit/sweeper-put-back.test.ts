import { describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import type { JobEnvelope } from '../../src/queue/jobs.js';
import { newRun } from '../../src/runbook/new-run.js';
import type { RunStore } from '../../src/runbook/store.js';
import { transition, type RunEvent } from '../../src/runbook/transition.js';
import type { ObservedState, Run, StepSpec } from '../../src/runbook/types.js';
import { startSweeper } from '../../src/worker/sweeper.js';

const T0 = new Date('2026-11-27T01:00:00.000Z');
const LATER = new Date(T0.getTime() + 3_600_000);
const STATE: ObservedState = { members: [], leaderHex: null, raftIndex: 1, revision: 1, at: T0.toISOString() };
const step = (kind: string, title: string): StepSpec => ({ kind, title, destructive: false, operation: title, params: {} }) as unknown as StepSpec;
// The statefulset replace in short: the PDB deleted and the template on `existing` before the step that gives up.
const STEPS = [step('pdb-delete', 'delete the PDB'), step('sts-initial-state', 'state existing'), step('drain', 'drain the node'), step('pdb-restore', 'make the PDB again')];

/** A run store over one run in memory, every change through the real `transition`; `order` says when the cluster was freed. */
function memoryStore(start: Run, order: string[]) {
  let run = start;
  let lock: string | null = run.runId;
  const store = {
    get: async () => structuredClone(run),
    apply: async (_id: string, event: RunEvent, now: Date) => {
      const t = transition(run, event, now);
      if ('refused' in t) return { run: structuredClone(run), changed: false, refused: t.refused };
      run = { ...t.run, version: run.version + 1 };
      return { run: structuredClone(run), changed: true };
    },
    leaseNamed: async () => true,
    leaseHolder: async () => null,
    activeRunIds: async () => (['done', 'failed', 'cancelled', 'rejected'].includes(run.status) ? [] : [run.runId]),
    forgetActive: async () => undefined,
    locks: async () => (lock ? [{ cluster: run.cluster, runId: lock }] : []),
    lockHolder: async () => lock,
    unlockCluster: async (_c: string, id: string) => {
      if (lock !== id) return false;
      order.push('cluster freed');
      lock = null;
      return true;
    },
  } as unknown as RunStore;
  return { store, now: () => run, locked: () => lock };
}

/** A run whose steps 1 and 2 are done and whose step 3 was started by a worker that then died. */
function runAtDrain(): Run {
  let run = newRun({ workspace: { roles: { approve: ['*'] } } } as never, { runId: 'r-5eeb0001', cluster: 'c1', target: 'kube-etcd-1', steps: STEPS, plannedState: STATE, runbook: 'replace', title: 't', requestedBy: 'UALICE', channelId: 'C1' } as never, T0);
  const apply = (e: RunEvent) => {
    const t = transition(run, e, T0);
    if ('refused' in t) throw new Error(t.refused);
    run = { ...t.run, version: run.version + 1 };
  };
  for (const i of [0, 1]) {
    apply({ kind: 'start-step', step: i, token: 'w1/a' });
    apply({ kind: 'complete-step', step: i, token: 'w1/a', summary: 'done' });
  }
  apply({ kind: 'start-step', step: 2, token: 'w1/b' });
  return run;
}

function sweeperOn(store: RunStore, failedJobs: unknown[], order: string[], threads: string[]) {
  const undone: Run[] = [];
  const queue = { getJobs: async (states: string[]) => (states.includes('failed') ? failedJobs : []) } as unknown as Queue<JobEnvelope>;
  const sweeper = startSweeper({
    store,
    queue,
    notify: { planChanged: async () => undefined, thread: async (_r, t) => void threads.push(t), record: async () => undefined },
    enqueueStep: async () => undefined,
    log: { info() {}, warn() {}, error() {}, debug() {} } as never,
    owner: 'w2',
    everyMs: 3_600_000,
    now: () => LATER,
    leftBehind: (r) => ({ text: `left behind by ${r.runId} (${r.status})` }),
    undoOnEnd: async (r) => {
      undone.push(structuredClone(r));
      order.push('put back');
      return ['PDB c1-ns/kube-etcd-pdb made again as it was saved', 'statefulset c1-ns/kube-etcd set back to --initial-cluster-state=new'];
    },
  });
  return { sweeper, undone };
}

describe('the sweeper ends a run the same way the engine does', () => {
  it('a run whose step job gave up for good puts back what it changed before its cluster is free, and says so', async () => {
    const order: string[] = [];
    const threads: string[] = [];
    const mem = memoryStore(runAtDrain(), order);
    // The fault: the drain step's job ran out of attempts (its worker kept dying), so nobody works on the run.
    const gaveUp = { data: { request: { name: 'step', data: { runId: 'r-5eeb0001', index: 2 } } }, attemptsMade: 3, failedReason: 'connect ECONNREFUSED' };
    const { sweeper, undone } = sweeperOn(mem.store, [gaveUp], order, threads);
    try {
      const did = await sweeper.sweep();
      expect(did.join('\n')).toMatch(/failed r-5eeb0001: step 3 \(drain the node\) could not be run/);
    } finally {
      await sweeper.stop();
    }
    expect(mem.now().status).toBe('failed');
    expect(undone).toHaveLength(1);
    expect(undone[0]!.status).toBe('failed');
    expect(undone[0]!.records.map((x) => x.status)).toEqual(['done', 'done', 'failed', 'not_run']);
    // Put back first, then freed: another run on c1 never starts with the PDB still deleted.
    expect(order).toEqual(['put back', 'cluster freed']);
    const text = threads.join('\n');
    expect(text).toMatch(/Run `r-5eeb0001` ended FAILED before its last step\. Put back:\n• PDB c1-ns\/kube-etcd-pdb made again as it was saved\n• statefulset c1-ns\/kube-etcd set back to --initial-cluster-state=new/);
    expect(text).toMatch(/left behind by r-5eeb0001 \(failed\)/);
  });

  it('a run that ended but still holds its lock (its worker died before it put back) is put back before the lock is released', async () => {
    const order: string[] = [];
    const threads: string[] = [];
    const run = runAtDrain();
    const t = transition(run, { kind: 'abandon', reason: 'the step failed' }, T0);
    if ('refused' in t) throw new Error(t.refused);
    const mem = memoryStore({ ...t.run, version: run.version + 1 }, order);
    const { sweeper, undone } = sweeperOn(mem.store, [], order, threads);
    try {
      const did = await sweeper.sweep();
      expect(did.join('\n')).toMatch(/released the lock of c1 \(its run `r-5eeb0001` has ended \(failed\)\)/);
    } finally {
      await sweeper.stop();
    }
    expect(undone).toHaveLength(1);
    expect(order).toEqual(['put back', 'cluster freed']);
    expect(mem.locked()).toBeNull();
    expect(threads.join('\n')).toMatch(/ended FAILED before its last step\. Put back:/);
  });

  it('a run that did every step has nothing put back when its leftover lock is released', async () => {
    const order: string[] = [];
    const threads: string[] = [];
    let run = runAtDrain();
    const apply = (e: RunEvent) => {
      const t = transition(run, e, T0);
      if ('refused' in t) throw new Error(t.refused);
      run = { ...t.run, version: run.version + 1 };
    };
    apply({ kind: 'complete-step', step: 2, token: 'w1/b', summary: 'done' });
    apply({ kind: 'start-step', step: 3, token: 'w1/c' });
    apply({ kind: 'complete-step', step: 3, token: 'w1/c', summary: 'done' });
    expect(run.status).toBe('done');
    const mem = memoryStore(run, order);
    const { sweeper, undone } = sweeperOn(mem.store, [], order, threads);
    try {
      await sweeper.sweep();
    } finally {
      await sweeper.stop();
    }
    expect(undone).toHaveLength(0);
    expect(order).toEqual(['cluster freed']);
  });

  it('an ended run whose lease is held (its worker is putting back now) is left to that worker; once the lease is free, the sweeper puts back and frees', async () => {
    const order: string[] = [];
    const threads: string[] = [];
    const run = runAtDrain();
    const t = transition(run, { kind: 'abandon', reason: 'the step failed' }, T0);
    if ('refused' in t) throw new Error(t.refused);
    const mem = memoryStore({ ...t.run, version: run.version + 1 }, order);
    // The fault: the run's own worker holds its lease while it ends the run (put-back, then free).
    let holder: string | null = 'w1/ending';
    (mem.store as unknown as { leaseHolder: () => Promise<string | null> }).leaseHolder = async () => holder;
    const { sweeper, undone } = sweeperOn(mem.store, [], order, threads);
    try {
      expect(await sweeper.sweep()).toEqual([]);
      // Nothing put back twice beside that worker, nothing freed under it.
      expect(undone).toHaveLength(0);
      expect(order).toEqual([]);
      expect(mem.locked()).toBe('r-5eeb0001');
      expect(threads).toEqual([]);
      // That worker died without ending it: its lease lapses, and the next sweep does what it did not.
      holder = null;
      expect((await sweeper.sweep()).join('\n')).toMatch(/released the lock of c1 \(its run `r-5eeb0001` has ended \(failed\)\)/);
    } finally {
      await sweeper.stop();
    }
    expect(undone).toHaveLength(1);
    expect(order).toEqual(['put back', 'cluster freed']);
    expect(mem.locked()).toBeNull();
  });

  it('a put-back that fails (the admin API gone) keeps the cluster locked, says so once, and frees it at the first sweep where the put-back works', async () => {
    const order: string[] = [];
    const threads: string[] = [];
    const run = runAtDrain();
    const t = transition(run, { kind: 'abandon', reason: 'the step failed' }, T0);
    if ('refused' in t) throw new Error(t.refused);
    const mem = memoryStore({ ...t.run, version: run.version + 1 }, order);
    // A lease store in memory that never lapses within the test: "said already" holds.
    const leases = new Set<string>();
    (mem.store as unknown as { leaseNamed: (n: string) => Promise<boolean> }).leaseNamed = async (n: string) => n === 'sweeper' || (!leases.has(n) && !!leases.add(n));
    // The fault: the admin cluster's API does not answer; later it does again.
    let apiUp = false;
    const queue = { getJobs: async () => [] } as unknown as Queue<JobEnvelope>;
    const sweeper = startSweeper({
      store: mem.store,
      queue,
      notify: { planChanged: async () => undefined, thread: async (_r, text) => void threads.push(text), record: async () => undefined },
      enqueueStep: async () => undefined,
      log: { info() {}, warn() {}, error() {}, debug() {} } as never,
      owner: 'w2',
      everyMs: 3_600_000,
      now: () => LATER,
      undoOnEnd: async () => {
        order.push(apiUp ? 'put back' : 'put back failed');
        return apiUp
          ? ['PDB kube-etcd-pdb made again as it was saved']
          : [':x: PDB c1-ns/kube-etcd-pdb could NOT be made again (connection refused). Do it by hand: `kubectl create -f /backups/c1/pdb-kube-etcd-pdb.r-5eeb0001.json`'];
      },
    });
    try {
      expect(await sweeper.sweep()).toEqual([]);
      expect(await sweeper.sweep()).toEqual([]);
      // Still locked to the ended run: no new run starts on a cluster whose PDB is still deleted.
      expect(mem.locked()).toBe('r-5eeb0001');
      expect(order).toEqual(['put back failed', 'put back failed']);
      // Said once, loudly, with what to do; the second failed try is not said again.
      expect(threads).toHaveLength(1);
      expect(threads[0]).toContain('NOT everything it changed could be put back');
      expect(threads[0]).toContain('c1 stays locked to this run, so that no new run starts on it half put back');
      expect(threads[0]).toContain('`/etcd cancel r-5eeb0001` tries once more and frees c1 whatever is left');
      apiUp = true;
      expect((await sweeper.sweep()).join('\n')).toMatch(/released the lock of c1/);
    } finally {
      await sweeper.stop();
    }
    expect(order).toEqual(['put back failed', 'put back failed', 'put back', 'cluster freed']);
    expect(mem.locked()).toBeNull();
    expect(threads[1]).toMatch(/ended FAILED before its last step\. Put back:\n• PDB kube-etcd-pdb made again as it was saved$/);
  });
});
