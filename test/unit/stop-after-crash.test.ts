import { describe, expect, it } from 'vitest';
import { processStep, type EngineDeps } from '../../src/runbook/engine.js';
import { newRun } from '../../src/runbook/new-run.js';
import type { LeaseGuard, RunLease, RunStore } from '../../src/runbook/store.js';
import { transition, type RunEvent } from '../../src/runbook/transition.js';
import type { ObservedState, StepSpec } from '../../src/runbook/types.js';
import { memoryLedger } from '../support/ledger.js';

const T0 = new Date('2026-11-27T01:00:00.000Z');
const STATE: ObservedState = { members: [], leaderHex: null, raftIndex: 1, revision: 1, at: T0.toISOString() };
const STEPS: StepSpec[] = [{ kind: 'snapshot', title: 'take a snapshot', destructive: false, operation: 'snapshot', params: {} } as StepSpec];

describe('a stop request on a step whose worker died mid-step', () => {
  it('ends the run (step marked failed, may be partly done) and frees the cluster instead of leaving it stuck', async () => {
    // A worker started step 1 and was killed inside it; then someone ran /etcd cancel.
    let run = newRun({ workspace: { roles: { approve: ['*'] } } } as never, { runId: 'r-0000dead', cluster: 'c1', target: 'm1', steps: STEPS, plannedState: STATE, runbook: 'replace', title: 't', requestedBy: 'UALICE', channelId: 'C1' } as never, T0);
    const apply = (e: RunEvent) => {
      const t = transition(run, e, T0);
      if ('refused' in t) throw new Error(t.refused);
      run = { ...t.run, version: run.version + 1 };
    };
    apply({ kind: 'start-step', step: 0, token: 'w1/dead' });
    apply({ kind: 'stop', how: 'cancel', by: 'UBOB' });
    let unlocked = false;
    const threads: string[] = [];
    const store = {
      get: async () => structuredClone(run),
      apply: async (_id: string, event: RunEvent, now: Date, _guard?: LeaseGuard) => {
        const t = transition(run, event, now);
        if ('refused' in t) return { run: structuredClone(run), changed: false, refused: t.refused };
        run = { ...t.run, version: run.version + 1 };
        return { run: structuredClone(run), changed: true };
      },
      lockHolder: async () => 'r-0000dead',
      unlockCluster: async () => (unlocked = true),
    } as unknown as RunStore;
    const deps: EngineDeps = {
      store,
      executors: new Proxy({}, { get: () => async () => ({ summary: 'ran' }) }) as EngineDeps['executors'],
      observe: async () => STATE,
      notify: { planChanged: async () => undefined, thread: async (_r, t) => void threads.push(t), record: async () => undefined },
      enqueueStep: async () => undefined,
      approvalTtlMs: 600_000,
      hmacKey: 'k',
      ledger: memoryLedger('k').ledger,
      now: () => T0,
      log: { info() {}, warn() {}, error() {}, debug() {} } as never,
    };
    const lease: RunLease = { token: 'w2/alive', lost: false, signal: new AbortController().signal };
    // The job the sweeper (or the cancel) queues: it holds the run lease, so nobody else executes the run.
    await processStep('r-0000dead', 0, deps, lease);
    expect(run.status).toBe('cancelled');
    expect(run.records[0]!.status).toBe('failed');
    expect(run.records[0]!.error).toMatch(/may be partly done/);
    expect(unlocked).toBe(true);
    expect(threads.join('\n')).toMatch(/Run `r-0000dead` cancelled by <@UBOB>/);
  });
});
