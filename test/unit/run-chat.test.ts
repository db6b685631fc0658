import { afterAll, describe, expect, it } from 'vitest';
import { processStep, type EngineDeps, type StepExecutor } from '../../src/runbook/engine.js';
import type { StepSpec } from '../../src/runbook/types.js';
import { memoryLedger } from '../support/ledger.js';
import { blockTexts } from '../support/memory-chat.js';
import { aRun, chatContext, HMAC_KEY, STATE } from '../support/chat-context.js';
import { threeMasters } from '../support/fixtures.js';

const { inventory } = threeMasters('{ roles: { approve: ["*"] } }');

const STEPS = [
  { kind: 'verify', title: 'Check the members', destructive: false, operation: 'member list and status on every endpoint', params: { voters: 3, minRevision: 1 } },
  { kind: 'member-remove', title: 'Remove m1 from the cluster', destructive: true, operation: 'etcdctl member remove a1', params: { name: 'm1', idHex: 'a1' } },
] as StepSpec[];

/** The engine as a worker wires it, with the chat in memory and executors that say what the test tells them to. */
function engineOver(t: ReturnType<typeof chatContext>, exec: StepExecutor): EngineDeps {
  return {
    store: t.store,
    executors: new Proxy({}, { get: () => exec }) as EngineDeps['executors'],
    observe: async () => STATE,
    notify: t.ctx.notifier,
    enqueueStep: t.ctx.enqueueStep,
    approvalTtlMs: 600_000,
    hmacKey: HMAC_KEY,
    ledger: memoryLedger(HMAC_KEY).ledger,
    now: () => new Date(),
    log: t.ctx.log,
  };
}

describe('a run as the channel sees it, through the chat port', () => {
  const t = chatContext(inventory);
  afterAll(() => t.close());

  it('posts the plan once and redraws it in place, and says each step in its thread and on the timeline', async () => {
    const incident = (await t.incidents.open('CRUN', 'm1 is down', 'UALICE')).incident;
    const run = { ...aRun(inventory, 'r-00000001', 'CRUN', STEPS), incidentId: incident.id };
    expect(await t.store.createLocked(run)).toBeNull();

    await t.ctx.notifier.planChanged(run);
    const [plan] = t.chat.channel('CRUN');
    expect(plan!.text).toContain('Replace m1 in prod');
    expect((await t.store.get(run.runId))!.messageTs).toBe(plan!.ts);

    // Step 1 runs (not destructive); the engine says how it went in the thread, redraws the plan and queues step 2.
    const deps = engineOver(t, async () => ({ summary: '3 voters, revision 42' }));
    const res = await t.store.withRunLease(run.runId, 'w-unit', 30_000, (lease) => processStep(run.runId, 0, deps, lease));
    expect(res.ok).toBe(true);
    expect(t.chat.thread('CRUN', plan!.ts)).toEqual([expect.stringMatching(/^:white_check_mark: Step 1: Check the members: 3 voters, revision 42 \(\d+\.\d s\)$/)]);
    expect(t.enqueued).toEqual([{ runId: run.runId, index: 1 }]);

    // Step 2 is destructive: its gate opens on the same message, with the buttons to approve it.
    await t.store.withRunLease(run.runId, 'w-unit', 30_000, (lease) => processStep(run.runId, 1, deps, lease));
    expect(t.chat.channel('CRUN')).toHaveLength(1);
    const now = t.chat.message('CRUN', plan!.ts);
    expect(JSON.stringify(now.blocks)).toContain('medic_approve');
    expect(blockTexts(now.blocks).join('\n')).toContain('Remove m1 from the cluster');
    expect(t.chat.records.filter((r) => r.kind === 'update' && r.ts === plan!.ts).length).toBeGreaterThanOrEqual(2);

    // Every thread line is also on the incident's timeline.
    const timeline = (await t.incidents.entries(incident.id)).map((e) => e.text);
    for (const line of t.chat.thread('CRUN', plan!.ts)) expect(timeline).toContain(line);
  });

  it('a step that fails ends the run: the thread says what failed and what was not done, the message says FAILED', async () => {
    const incident = (await t.incidents.open('CFAIL', 'm1 is down', 'UALICE')).incident;
    const run = { ...aRun(inventory, 'r-00000002', 'CFAIL', STEPS, 'prod-b'), incidentId: incident.id };
    expect(await t.store.createLocked(run)).toBeNull();
    await t.ctx.notifier.planChanged(run);
    const [plan] = t.chat.channel('CFAIL');
    // The fault: the step's check throws.
    const deps = engineOver(t, async () => {
      throw new Error('m2 answers with a different cluster ID');
    });
    await t.store.withRunLease(run.runId, 'w-unit', 30_000, (lease) => processStep(run.runId, 0, deps, lease));
    const thread = t.chat.thread('CFAIL', plan!.ts).join('\n');
    expect(thread).toContain(':x: Step 1 (Check the members) failed: m2 answers with a different cluster ID');
    expect(thread).toContain('Done: nothing. Not done: 1. Check the members; 2. Remove m1 from the cluster.');
    expect(t.chat.message('CFAIL', plan!.ts).text.split('\n')[0]).toBe('Replace m1 in prod: FAILED (run r-00000002)');
    expect(t.chat.channel('CFAIL')).toHaveLength(1);
  });

  it('a Slack failure while drawing is logged, never fatal to the step: the run in Redis is the record', async () => {
    const run = { ...aRun(inventory, 'r-00000003', 'CDOWN', STEPS, 'prod-c') };
    expect(await t.store.createLocked(run)).toBeNull();
    // The fault: chat refuses every message.
    t.chat.failing.set('post', new Error('An API error occurred: ratelimited'));
    try {
      await t.ctx.notifier.planChanged(run);
      await t.ctx.notifier.thread(run, 'a line nobody sees');
    } finally {
      t.chat.failing.delete('post');
    }
    expect(t.chat.channel('CDOWN')).toEqual([]);
    expect((await t.store.get(run.runId))!.messageTs).toBeUndefined();
    // Slack back: the next redraw posts the plan.
    await t.ctx.notifier.planChanged(run);
    expect(t.chat.channel('CDOWN')).toHaveLength(1);
  });
});
