import { describe, expect, it } from 'vitest';
import { replayProblem } from '../../src/approvals/replay.js';
import { sealPlan, signApproval } from '../../src/approvals/sign.js';
import { processStep, type EngineDeps, type StepExecutor } from '../../src/runbook/engine.js';
import { newRun } from '../../src/runbook/new-run.js';
import type { LeaseGuard, RunStore } from '../../src/runbook/store.js';
import { transition, type RunEvent } from '../../src/runbook/transition.js';
import type { ObservedState, Run, StepSpec } from '../../src/runbook/types.js';
import { memoryLedger } from '../support/ledger.js';

const KEY = 'r'.repeat(64);
const T0 = new Date('2026-11-27T01:00:00.000Z');
const STATE: ObservedState = {
  members: [{ idHex: 'a1', name: 'm1', learner: false, started: true, reachable: true, peerURLs: ['https://10.0.0.1:2380'] }],
  leaderHex: 'a1',
  raftIndex: 1,
  revision: 1,
  at: T0.toISOString(),
};
const STEPS: StepSpec[] = [
  { kind: 'force-new-cluster', title: 'Start m1 with --force-new-cluster', destructive: true, operation: 'force-new-cluster on m1', host: 'm1',
    params: { name: 'm1', config: '/etc/kubernetes/manifests/etcd.yaml', configAside: '/etc/kubernetes/etcd-medic-aside/etcd.yaml.r-0000cafe', asideDir: '/etc/kubernetes/etcd-medic-aside', dataDir: '/var/lib/etcd', dataAside: '/var/lib/etcd.before-r-0000cafe', clientHost: '10.0.0.1', peerUrl: 'https://10.0.0.1:2380', listen: ['10.0.0.1:2379', '10.0.0.1:2380'], endpoint: 'https://10.0.0.1:2379' },
  },
  { kind: 'verify', title: 'Verify', destructive: false, operation: 'verify', params: { voters: 1, minRevision: 1 } },
];
const RUN = 'r-0000cafe';

/** One in-memory run, changed only through the real transition function. */
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
  return { store: store as unknown as RunStore, run: () => cur, write: (f: (r: Run) => void) => f(cur) };
}

/** A run as the worker stores it (sealed, bound to the ledger's incident), its step 1 approved by UBOB with a signed approval. */
function approvedRun(incidentId: string): Run {
  const planned = newRun({ workspace: { roles: { approve: ['*'] } } } as never, { runId: RUN, cluster: 'c1', target: 'm1', steps: STEPS, plannedState: STATE, runbook: 'restore-quorum', title: 't', requestedBy: 'UALICE', channelId: 'C1' }, T0);
  let run = sealPlan(KEY, { ...planned, incidentId });
  const step = (e: RunEvent) => {
    const t = transition(run, e, T0);
    if ('refused' in t) throw new Error(t.refused);
    run = t.run;
  };
  step({ kind: 'open-gate', step: 0, state: STATE, ttlMs: 600_000 });
  const at = T0.toISOString();
  step({ kind: 'approve', step: 0, hash: run.gate!.hash, by: 'UBOB', sig: signApproval(KEY, { runId: RUN, step: 0, gateHash: run.gate!.hash, approver: 'UBOB', at }) });
  return run;
}

function setup() {
  const ledger = memoryLedger(KEY);
  const m = memStore(approvedRun(ledger.incidentId));
  const ran: string[] = [];
  const said: string[] = [];
  let exec: StepExecutor = async (_r, s) => {
    ran.push(s.kind);
    return { summary: 'did it' };
  };
  const deps: EngineDeps = {
    store: m.store,
    executors: new Proxy({}, { get: () => (...a: Parameters<StepExecutor>) => exec(...a) }) as EngineDeps['executors'],
    observe: async () => STATE,
    notify: { planChanged: async () => undefined, thread: async (_r, t) => void said.push(t), record: async () => undefined },
    enqueueStep: async () => undefined,
    approvalTtlMs: 600_000,
    hmacKey: KEY,
    ledger: ledger.ledger,
    now: () => T0,
    log: { info() {}, warn() {}, error() {}, debug() {} } as never,
  };
  return { ledger, m, ran, said, deps, setExec: (e: StepExecutor) => void (exec = e) };
}

/** The fault: someone who can write Redis sets step 1 of the run back to `status` (its signed approval kept, unless pending). */
function rewind(m: ReturnType<typeof memStore>, status: 'running' | 'approved' | 'pending') {
  m.write((r) => {
    r.status = 'running';
    r.current = 0;
    delete r.ended;
    r.records[0]!.status = status;
    if (status === 'pending') r.records[0] = { status: 'pending' };
    r.records[1] = { status: 'pending' };
  });
}

describe('a destructive step runs once per approval, whatever Redis says afterwards', () => {
  it('runs an approved step once and leaves its start and end on the signed timeline (control)', async () => {
    const { ledger, m, ran, deps } = setup();
    await processStep(RUN, 0, deps);
    expect(ran).toEqual(['force-new-cluster']);
    expect(m.run().records[0]!.status).toBe('done');
    const marks = ledger.entries.filter((e) => e.mark).map((e) => `${e.mark!.what}:${e.mark!.outcome ?? ''}:${e.mark!.approval === m.run().records[0]!.approvalSig}`);
    expect(marks).toEqual(['start::true', 'end:done:true']);
    expect(ledger.entries[1]!.text).toMatch(/^Step 1 \(Start m1 with --force-new-cluster\) started under the approval by <@UBOB> at 2026-11-27T01:00:00.000Z \(signature [0-9a-f]{12}\), which is now used: force-new-cluster on m1$/);
  });

  for (const status of ['running', 'approved', 'pending'] as const) {
    it(`refuses the done step set back to ${status}: nothing is done again, the run fails on the record and says plan again`, async () => {
      const { ledger, m, ran, said, deps } = setup();
      await processStep(RUN, 0, deps);
      // As the real notifier does, the step's thread line is on the timeline too, after its end.
      ledger.note(RUN, said.find((t) => t.startsWith(':white_check_mark: Step 1'))!);
      const gate = m.run().gate;
      rewind(m, status);
      await processStep(RUN, 0, deps);
      expect(ran).toEqual(['force-new-cluster']);
      expect(m.run().status).toBe('failed');
      expect(m.run().gate).toEqual(gate); // not gated again: nobody is asked to approve it once more
      const why = m.run().ended!.reason;
      expect(why).toMatch(/^step 1 refused to run: /);
      const expected = {
        running: /step 1 already ran: the signed timeline says it ended \(done\) at 2026-11-27T01:00:03\.000Z/,
        approved: /the approval of step 1 by <@UBOB> at 2026-11-27T01:00:00\.000Z was already used: the signed timeline says the step started under it at 2026-11-27T01:00:02\.000Z and ended \(done\) at 2026-11-27T01:00:03\.000Z/,
        pending: /step 1 already ran: the signed timeline says it ended \(done\)/,
      }[status];
      const line = said.find((t) => t.startsWith(':x: Step 1'))!;
      expect(line).toMatch(expected);
      expect(line).toContain('Nothing was done by this step');
      expect(line).toContain('To do the step again, plan again');
    });
  }

  it('resumes a step whose worker died after it started (the start on the timeline, under its approval)', async () => {
    const { ledger, m, ran, deps, setExec } = setup();
    // The fault: the first worker dies inside the step (its executor never returns).
    setExec(async (_r, s) => {
      ran.push(`${s.kind} (dies)`);
      return new Promise(() => undefined);
    });
    void processStep(RUN, 0, deps);
    await expect.poll(() => ran.length).toBe(1);
    expect(m.run().records[0]!.status).toBe('running');
    setExec(async (_r, s) => (ran.push(s.kind), { summary: 'done on resume' }));
    await processStep(RUN, 0, deps);
    expect(ran).toEqual(['force-new-cluster (dies)', 'force-new-cluster']);
    expect(m.run().records[0]!.status).toBe('done');
    expect(ledger.entries.filter((e) => e.mark?.what === 'start')).toHaveLength(1);
  });

  it('refuses "running" written onto an approved step that never started', async () => {
    const { m, ran, said, deps } = setup();
    m.write((r) => (r.records[0]!.status = 'running'));
    await processStep(RUN, 0, deps);
    expect(ran).toEqual([]);
    expect(m.run().status).toBe('failed');
    expect(said.join('\n')).toContain('the signed timeline has no start of step 1 under the approval it carries');
    // The same record as a worker killed between recording the start and signing it: the advice fits both, and blames neither.
    expect(said.join('\n')).toContain('It never acted (a step acts only once its start is signed)');
    expect(said.join('\n')).not.toContain('was set back to run it again');
  });

  it('refuses when the timeline was cut to hide the end: it cannot tell, so nothing runs', async () => {
    const { ledger, m, ran, said, deps } = setup();
    await processStep(RUN, 0, deps);
    rewind(m, 'running');
    // The fault: the step's end (and start) entries removed from the end of the timeline.
    ledger.entries.splice(1);
    await processStep(RUN, 0, deps);
    expect(ran).toEqual(['force-new-cluster']);
    expect(m.run().status).toBe('failed');
    const line = said.find((t) => t.startsWith(':x: Step 1'))!;
    expect(line).toContain(`the timeline of incident ${ledger.incidentId} does not verify (entries were removed from the end (the head says 3 entries, 1 are left))`);
    expect(line).toContain('Close this incident (`/etcd incident close`), open a new one and plan again');
  });

  it('does not act when its start cannot be written on the timeline', async () => {
    const { ledger, m, ran, said, deps } = setup();
    ledger.failWrites('Redis said no');
    await processStep(RUN, 0, deps);
    expect(ran).toEqual([]);
    expect(m.run().status).toBe('failed');
    expect(said.join('\n')).toContain("its start could not be written on the incident's signed timeline (Redis said no), so it did not act: nothing was done");
  });

  it('does not record a step done without its end on the timeline: the job fails, and the retry resumes it', async () => {
    const { ledger, m, ran, deps, setExec } = setup();
    setExec(async (_r, s) => {
      ran.push(s.kind);
      ledger.failWrites('Redis went away');
      return { summary: 'did it' };
    });
    await expect(processStep(RUN, 0, deps)).rejects.toThrow('Redis went away');
    expect(m.run().records[0]!.status).toBe('running');
    ledger.failWrites(null);
    setExec(async (_r, s) => (ran.push(s.kind), { summary: 'already done: nothing to do', skipped: true }));
    await processStep(RUN, 0, deps);
    expect(ran).toEqual(['force-new-cluster', 'force-new-cluster']);
    expect(m.run().records[0]!.status).toBe('skipped');
    expect(ledger.entries.filter((e) => e.mark).map((e) => `${e.mark!.what}:${e.mark!.outcome ?? ''}`)).toEqual(['start:', 'end:skipped']);
  });
});

describe('a worker that stops between signing a step\'s end and recording it', () => {
  /** The fault: the run's record cannot be written once (Redis lost, or the worker killed, right after the end mark). */
  function failNextComplete(m: ReturnType<typeof memStore>, why: string) {
    const apply = m.store.apply.bind(m.store);
    let armed = true;
    m.store.apply = async (id, event, now, guard) => {
      if (armed && event.kind === 'complete-step') {
        armed = false;
        throw new Error(why);
      }
      return apply(id, event, now, guard);
    };
  }

  for (const skipped of [false, true]) {
    it(`records the step ${skipped ? 'skipped' : 'done'} from its signed end and moves the run on: not run again, not refused`, async () => {
      const { ledger, m, ran, said, deps, setExec } = setup();
      const queued: number[] = [];
      deps.enqueueStep = async (_id, i) => void queued.push(i);
      setExec(async (_r, s) => (ran.push(s.kind), { summary: 'did it', skipped }));
      failNextComplete(m, 'Redis went away after the end mark');
      await expect(processStep(RUN, 0, deps)).rejects.toThrow('Redis went away after the end mark');
      expect(m.run().records[0]!.status).toBe('running');
      // The job is retried (or another worker takes it over).
      await processStep(RUN, 0, deps);
      expect(ran).toEqual(['force-new-cluster']);
      expect(m.run().status).not.toBe('failed');
      expect(m.run().records[0]!.status).toBe(skipped ? 'skipped' : 'done');
      expect(m.run().current).toBe(1);
      expect(queued).toEqual([1]);
      expect(said.some((t) => t.startsWith(':x:'))).toBe(false);
      const line = said.find((t) => t.startsWith(skipped ? ':fast_forward: Step 1' : ':white_check_mark: Step 1'))!;
      expect(line).toMatch(new RegExp(`ended \\(${skipped ? 'skipped' : 'done'}\\) at 2026-11-27T01:00:03\\.000Z, as its signed end on the timeline says; its worker stopped before recording it, so it is recorded now and not run again`));
      // One start, one end: the approval was used once.
      expect(ledger.entries.filter((e) => e.mark).map((e) => `${e.mark!.what}:${e.mark!.outcome ?? ''}`)).toEqual(['start:', `end:${skipped ? 'skipped' : 'done'}`]);
    });
  }

  it('records it from its end though someone clicked an old button of the run meanwhile (an entry of theirs after the end)', async () => {
    const { ledger, m, ran, deps } = setup();
    failNextComplete(m, 'worker killed');
    await expect(processStep(RUN, 0, deps)).rejects.toThrow('worker killed');
    ledger.note(RUN, 'approve of step 1 refused: step 1 is running, not waiting for approval', 'UCAROL');
    await processStep(RUN, 0, deps);
    expect(ran).toEqual(['force-new-cluster']);
    expect(m.run().records[0]!.status).toBe('done');
  });

  it('still refuses a running step whose signed end says it failed: the run stays failed', async () => {
    const { m, ran, deps, setExec } = setup();
    setExec(async (_r, s) => {
      ran.push(s.kind);
      throw new Error('etcd did not come up');
    });
    await processStep(RUN, 0, deps);
    expect(m.run().status).toBe('failed');
    rewind(m, 'running');
    await processStep(RUN, 0, deps);
    expect(m.run().status).toBe('failed');
    expect(m.run().ended!.reason).toMatch(/^step 1 refused to run: step 1 already ran: the signed timeline says it ended \(failed\)/);
    expect(ran).toEqual(['force-new-cluster']);
  });
});

describe('a worker whose run lease lapses while it writes the start mark', () => {
  it('does not act: the step is left to the worker that takes it over, which resumes it once', async () => {
    const { ledger, m, ran, deps } = setup();
    // The fault: Redis stalls on the start mark for longer than the run lease (the write lands in the end).
    const ctl = new AbortController();
    const lease = { token: 'w1/late', get lost() { return ctl.signal.aborted; }, signal: ctl.signal };
    const mark = deps.ledger.mark.bind(deps.ledger);
    deps.ledger = { ...deps.ledger, mark: async (run, mk, text) => {
      await mark(run, mk, text);
      if (mk.what === 'start') ctl.abort(new Error('run lease lapsed'));
    } };
    await processStep(RUN, 0, deps, lease);
    expect(ran).toEqual([]);
    expect(m.run().records[0]!.status).toBe('running');
    // The worker that takes the step over resumes it under the start mark now on the timeline.
    deps.ledger = ledger.ledger;
    await processStep(RUN, 0, deps, { token: 'w2/next', lost: false, signal: new AbortController().signal });
    expect(ran).toEqual(['force-new-cluster']);
    expect(m.run().records[0]!.status).toBe('done');
  });
});

describe('replayProblem (pure)', () => {
  const ok = (entries: ReturnType<typeof memoryLedger>['entries']) => ({ incidentId: 'inc-1', entries, chain: { ok: true as const, count: entries.length, head: 'h' } });
  const mark = (seq: number, what: 'start' | 'end', approval: string, extra: Partial<{ runId: string; actor: string; step: number }> = {}) => ({
    seq,
    at: `2026-11-27T01:00:0${seq}.000Z`,
    kind: 'step' as const,
    actor: extra.actor ?? 'bot',
    text: '',
    runId: extra.runId ?? RUN,
    prev: '',
    hash: '',
    mark: { step: extra.step ?? 0, what, approval, ...(what === 'end' ? { outcome: 'done' as const } : {}) },
  });
  const run = (status: Run['records'][number]['status'], sig = 'sig-1'): Run => ({ runId: RUN, records: [{ status, approvalSig: sig, approvedBy: 'UBOB', approvedAt: 'T' }] }) as unknown as Run;

  it('lets a fresh approval run, and a started step resume under the same approval only', () => {
    expect(replayProblem(run('approved'), 0, ok([]))).toBeNull();
    expect(replayProblem(run('running'), 0, ok([mark(1, 'start', 'sig-1')]))).toBeNull();
    expect(replayProblem(run('running', 'sig-2'), 0, ok([mark(1, 'start', 'sig-1')]))).toContain('has no start of step 1 under the approval it carries');
  });

  it('counts only the engine\'s marks for this run and step', () => {
    // A mark of another run, of another step, or not written by the bot says nothing about this step.
    const others = [mark(1, 'end', 'sig-1', { runId: 'r-00000000' }), mark(2, 'end', 'sig-1', { step: 1 }), mark(3, 'end', 'sig-1', { actor: 'UMALLORY' })];
    expect(replayProblem(run('approved'), 0, ok(others))).toBeNull();
  });

  it('refuses a started or ended step, and any step when the timeline does not verify or is missing', () => {
    expect(replayProblem(run('approved'), 0, ok([mark(1, 'start', 'sig-1')]))).toBe('the approval of step 1 by <@UBOB> at T was already used: the signed timeline says the step started under it at 2026-11-27T01:00:01.000Z');
    expect(replayProblem(run('approved', 'sig-2'), 0, ok([mark(1, 'start', 'sig-1')]))).toContain('step 1 already started at 2026-11-27T01:00:01.000Z');
    expect(replayProblem(run('running'), 0, ok([mark(1, 'start', 'sig-1'), mark(2, 'end', 'sig-1')]))).toBe('step 1 already ran: the signed timeline says it ended (done) at 2026-11-27T01:00:02.000Z');
    expect(replayProblem(run('pending'), 0, { incidentId: 'inc-1', entries: [], chain: { ok: false, seq: 3, reason: 'entry 3 was changed' } })).toContain('does not verify (entry 3 was changed)');
    expect(replayProblem(run('pending'), 0, null)).toContain('names no incident');
  });
});
