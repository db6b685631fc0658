import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { waitFor } from '../../src/lab/proc.js';
import { createLogger } from '../../src/log.js';
import { connectRedis } from '../../src/queue/redis.js';
import { processStep, type EngineDeps, type StepExecutor } from '../../src/runbook/engine.js';
import { newRun } from '../../src/runbook/new-run.js';
import { RunStore } from '../../src/runbook/store.js';
import type { ObservedState, Run, StepKind, StepSpec } from '../../src/runbook/types.js';
import { threeMasters } from '../support/fixtures.js';
import { StallableRelay } from '../support/stallable-relay.js';
import { memoryLedger } from '../support/ledger.js';

const { inventory } = threeMasters('{ roles: { approve: [UBOB], destroy: [UALICE] } }');
const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 1, revision: 1, at: new Date().toISOString() };
// The executors here are stand-ins that never read a step's params.
const spec = (kind: StepKind): StepSpec => ({ kind, title: kind, destructive: false, operation: kind, params: {} }) as StepSpec;
const LEASE_MS = 600;

describe('a worker that lost Redis for longer than its lease and came back', () => {
  const prefix = `t-late-${randomBytes(3).toString('hex')}`;
  const url = inject('redisUrl');
  const relay = new StallableRelay(inject('redisPort'));
  const direct = connectRedis(url);
  let late: ReturnType<typeof connectRedis>;

  beforeAll(async () => {
    await relay.start();
    late = connectRedis(`redis://127.0.0.1:${relay.port}`, { forWorker: true });
    await late.ping();
  });
  afterAll(async () => {
    late.disconnect();
    direct.disconnect();
    await relay.stop();
  });

  function engine(store: RunStore, executors: Partial<Record<StepKind, StepExecutor>>, said: string[]): EngineDeps {
    const notify = { planChanged: async () => undefined, thread: async (_r: Run, t: string) => void said.push(t), record: async (_r: Run, t: string) => void said.push(t) };
    return { store, executors: executors as Record<StepKind, StepExecutor>, observe: async () => state, notify, enqueueStep: async () => undefined, approvalTtlMs: 60_000, now: () => new Date(), log: createLogger('silent'), hmacKey: 'late-worker-test-key', ledger: memoryLedger('late-worker-test-key').ledger };
  }

  async function scenario(lateOutcome: 'completes' | 'throws') {
    const runId = `r-${randomBytes(4).toString('hex')}`;
    const cluster = `c-${runId}`;
    const run = newRun(inventory, { runId, runbook: 'replace', title: 't', cluster, target: 'm3', steps: [spec('snapshot'), spec('verify'), spec('verify')], plannedState: state, requestedBy: 'UALICE', channelId: 'C' }, new Date());
    const storeB = new RunStore(direct, prefix);
    const storeA = new RunStore(late, prefix);
    expect(await storeB.createLocked(run)).toBeNull();

    // Worker A takes the lease and starts step 1; its executor runs while A loses Redis.
    let aRunning!: () => void;
    const aStarted = new Promise<void>((r) => (aRunning = r));
    let letAFinish!: () => void;
    const aMayFinish = new Promise<void>((r) => (letAFinish = r));
    const saidA: string[] = [];
    const slowSnapshot: StepExecutor = async () => {
      aRunning();
      await aMayFinish;
      if (lateOutcome === 'throws') throw new Error('connection to the etcd leader lost');
      return { summary: 'snapshot by A' };
    };
    const a = storeA.withRunLease(runId, 'worker-A', LEASE_MS, (lease) => processStep(runId, 0, engine(storeA, { snapshot: slowSnapshot }, saidA), lease));
    await aStarted;
    expect((await storeB.get(runId))!.records[0]!.status).toBe('running');

    // The fault: A's connection to Redis stalls for longer than its lease.
    relay.hold();
    await waitFor('A\'s lease to lapse', async () => (await storeB.leaseHolder(runId)) === null, 5000, 50);

    // Worker B takes the step over and finishes the whole run but one step.
    const saidB: string[] = [];
    const fast = { snapshot: async () => ({ summary: 'snapshot by B' }), verify: async () => ({ summary: 'verified by B' }) };
    for (const i of [0, 1]) {
      const res = await storeB.withRunLease(runId, 'worker-B', 10_000, (lease) => processStep(runId, i, engine(storeB, fast, saidB), lease));
      expect(res.ok).toBe(true);
    }
    const afterB = (await storeB.get(runId))!;
    expect(afterB).toMatchObject({ current: 2, status: 'running' });
    expect(afterB.records.map((r) => r.summary)).toEqual(['snapshot by B', 'verified by B', undefined]);

    // A comes back (what it sent meanwhile arrives now) and its step ends.
    relay.release();
    letAFinish();
    const outcome = await a;
    expect(outcome.ok).toBe(true);

    // Nothing A did after losing its lease was recorded: the run, its current step and its lock are as B left them.
    const final = (await storeB.get(runId))!;
    expect(final).toEqual(afterB);
    expect(await storeB.lockHolder(cluster)).toBe(runId);
    // A direct attempt to release the lock of a run that is still going is refused too.
    expect(await storeA.unlockCluster(cluster, runId)).toBe(false);
    expect(await storeB.lockHolder(cluster)).toBe(runId);
    expect(saidA.filter((s) => /failed|Step 1: snapshot/.test(s))).toEqual([]);
    return { final, saidB };
  }

  it('cannot record its late result, move `current` back or release the lock', async () => {
    await scenario('completes');
  });

  it('cannot mark the run failed when its step throws late', async () => {
    const { final } = await scenario('throws');
    expect(final.status).toBe('running');
    expect(final.ended).toBeUndefined();
  });

  it('renews its lease only while the lease is still its own', async () => {
    const store = new RunStore(direct, prefix);
    const runId = `r-${randomBytes(4).toString('hex')}`;
    const res = await store.withRunLease(runId, 'worker-A', LEASE_MS, async (lease) => {
      // Someone else's token in the lease key (A's lapsed and B took it): A's next renewal finds it and stops.
      await direct.set(`${prefix}:runexec:${runId}`, 'worker-B/1', 'PX', 10_000);
      await waitFor('A to notice it lost the lease', async () => lease.lost, 5000, 50);
      return lease.signal.aborted;
    });
    expect(res).toEqual({ ok: true, value: true });
    // A's release did not delete B's lease.
    expect(await direct.get(`${prefix}:runexec:${runId}`)).toBe('worker-B/1');
  });
});
