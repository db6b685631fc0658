import { describe, expect, it } from 'vitest';
import { sealPlan, signApproval } from '../../src/approvals/sign.js';
import { processStep, type EngineDeps, type StepExecutor } from '../../src/runbook/engine.js';
import { newRun } from '../../src/runbook/new-run.js';
import type { LeaseGuard, RunStore } from '../../src/runbook/store.js';
import { transition, type RunEvent } from '../../src/runbook/transition.js';
import type { ObservedState, Run, StepOf, StepSpec } from '../../src/runbook/types.js';
import { memoryLedger } from '../support/ledger.js';

const KEY = 'k'.repeat(64);
const T0 = new Date('2026-11-27T01:00:00.000Z');
const STATE: ObservedState = {
  members: [{ idHex: 'a1', name: 'm1', learner: false, started: true, reachable: true, peerURLs: ['https://10.0.0.1:2380'] }] as ObservedState['members'],
  leaderHex: 'a1',
  raftIndex: 1,
  revision: 1,
  at: T0.toISOString(),
};
const STEPS: StepSpec[] = [
  {
    kind: 'stop-and-move-aside',
    title: 'stop m2 and move its data dir aside',
    destructive: true,
    operation: 'mv /var/lib/etcd',
    host: 'm2',
    params: { config: '/etc/kubernetes/manifests/etcd.yaml', configAside: '/etc/kubernetes/etcd-medic-aside/etcd.yaml.r-0000beef', asideDir: '/etc/kubernetes/etcd-medic-aside', dataDir: '/var/lib/etcd', dataAside: '/var/lib/etcd.before-r-0000beef', clientHost: '10.0.0.2', listen: ['10.0.0.2:2379', '10.0.0.2:2380'] },
  },
];

/** A store over one in-memory run that applies events through the real transition function. */
function memStore(run: Run) {
  let cur = structuredClone(run);
  const store = {
    get: async () => structuredClone(cur),
    apply: async (_id: string, event: RunEvent, now: Date, _guard?: LeaseGuard) => {
      const t = transition(cur, event, now);
      if ('refused' in t) return { run: structuredClone(cur), changed: false, refused: t.refused };
      cur = { ...t.run, version: cur.version + 1 };
      return { run: structuredClone(cur), changed: true };
    },
    lockHolder: async () => null,
    unlockCluster: async () => true,
  };
  return { store: store as unknown as RunStore, now: () => cur, write: (f: (r: Run) => void) => f(cur) };
}

/** A run as the worker stores it: bound to its incident and its plan signed. */
function plannedRun(): Run {
  const run = newRun({ workspace: { roles: { approve: ['*'] } } } as never, { runId: 'r-0000beef', cluster: 'c1', target: 'm2', steps: STEPS, plannedState: STATE, runbook: 'replace', title: 't', rationale: 'r', requestedBy: 'UALICE', channelId: 'C1' } as never, T0);
  return sealPlan(KEY, { ...run, incidentId: 'inc-0000test' });
}

function approvedRun(): Run {
  let run = plannedRun();
  const step = (e: RunEvent) => {
    const t = transition(run, e, T0);
    if ('refused' in t) throw new Error(t.refused);
    run = t.run;
  };
  step({ kind: 'open-gate', step: 0, state: STATE, ttlMs: 600_000 });
  const at = T0.toISOString();
  step({ kind: 'approve', step: 0, hash: run.gate!.hash, by: 'UBOB', sig: signApproval(KEY, { runId: run.runId, step: 0, gateHash: run.gate!.hash, approver: 'UBOB', at }) });
  return run;
}

function deps(store: RunStore, ran: string[], ledger = memoryLedger(KEY).ledger): EngineDeps {
  const exec: StepExecutor = async (_r, s) => {
    ran.push(s.kind === 'stop-and-move-aside' ? s.params.dataDir : s.kind);
    return { summary: 'moved' };
  };
  return {
    store,
    executors: new Proxy({}, { get: () => exec }) as EngineDeps['executors'],
    observe: async () => STATE,
    notify: { planChanged: async () => undefined, thread: async () => undefined, record: async () => undefined },
    enqueueStep: async () => undefined,
    approvalTtlMs: 600_000,
    hmacKey: KEY,
    ledger,
    now: () => T0,
    log: { info() {}, warn() {}, error() {}, debug() {} } as never,
  };
}

describe('a Redis writer cannot make a destructive step run without a verified approval', () => {
  it('runs an approved, signed step once (control)', async () => {
    const m = memStore(approvedRun());
    const ran: string[] = [];
    await processStep('r-0000beef', 0, deps(m.store, ran));
    expect(ran).toEqual(['/var/lib/etcd']);
  });

  it('refuses a destructive step whose record was written as running without any approval', async () => {
    const run = { ...plannedRun(), records: [{ status: 'running' as const }] };
    const m = memStore(run);
    const ran: string[] = [];
    await processStep('r-0000beef', 0, deps(m.store, ran));
    expect(ran).toEqual([]);
    expect(m.now().status).toBe('failed');
  });

  it('refuses an approved step whose parameters were edited after the approval', async () => {
    const m = memStore(approvedRun());
    m.write((r) => ((r.steps[0] as StepOf<'stop-and-move-aside'>).params.dataDir = '/'));
    const ran: string[] = [];
    await processStep('r-0000beef', 0, deps(m.store, ran));
    expect(ran).toEqual([]);
    expect(m.now().status).toBe('failed');
  });

  it('refuses an approved step whose gate state was rewritten to match a changed cluster', async () => {
    const m = memStore(approvedRun());
    const changed: ObservedState = { ...STATE, members: [...STATE.members, { ...STATE.members[0]!, idHex: 'b2', name: 'm9' }] };
    m.write((r) => (r.gate!.state = changed));
    const ran: string[] = [];
    const d = deps(m.store, ran);
    d.observe = async () => changed;
    await processStep('r-0000beef', 0, d);
    expect(ran).toEqual([]);
    expect(m.now().status).toBe('failed');
  });
});
