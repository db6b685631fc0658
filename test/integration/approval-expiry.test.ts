import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { sealPlan, signApproval } from '../../src/approvals/sign.js';
import { createLogger } from '../../src/log.js';
import { connectRedis } from '../../src/queue/redis.js';
import { processStep, type EngineDeps } from '../../src/runbook/engine.js';
import { newRun } from '../../src/runbook/new-run.js';
import { RunStore } from '../../src/runbook/store.js';
import type { ObservedState, Run, StepKind, StepSpec } from '../../src/runbook/types.js';
import { threeMasters } from '../support/fixtures.js';
import { memoryLedger } from '../support/ledger.js';

const { inventory } = threeMasters('{ roles: { approve: [UBOB], destroy: [UALICE] } }');
const state: ObservedState = { members: [{ idHex: 'a1', name: 'm1', peerURLs: [], learner: false, started: true, reachable: true }], leaderHex: 'a1', raftIndex: 1, revision: 1, at: new Date().toISOString() };
const t0 = new Date('2026-11-23T03:00:00Z');
const at = (min: number) => new Date(t0.getTime() + min * 60_000);
const HMAC_KEY = randomBytes(32).toString('hex');

describe('an approval is checked against its window when the approved step finally runs', () => {
  const redis = connectRedis(inject('redisUrl'));
  const store = new RunStore(redis, `t-expiry-${randomBytes(3).toString('hex')}`);
  afterAll(() => redis.disconnect());

  async function approvedAt14(): Promise<{ run: Run; ran: number[]; said: string[]; deps: (now: Date) => EngineDeps }> {
    const steps: StepSpec[] = [{ kind: 'member-remove', title: 'Remove m3', destructive: true, operation: 'member remove', params: { idHex: 'a3', name: 'm3', peerUrl: 'https://10.0.0.3:2380' } }];
    const planned = newRun(inventory, { runId: `r-${randomBytes(4).toString('hex')}`, runbook: 'replace', title: 't', cluster: `c-${randomBytes(3).toString('hex')}`, target: 'm3', steps, plannedState: state, requestedBy: 'UALICE', channelId: 'C' }, t0);
    // As the worker stores a run: bound to its incident (here one kept in memory) and its plan signed.
    const ledger = memoryLedger(HMAC_KEY);
    const run = sealPlan(HMAC_KEY, { ...planned, incidentId: ledger.incidentId });
    expect(await store.createLocked(run)).toBeNull();
    const ran: number[] = [];
    const said: string[] = [];
    const deps = (now: Date): EngineDeps => ({
      store,
      executors: { 'member-remove': async () => (ran.push(now.getTime()), { summary: 'removed' }) } as unknown as Record<StepKind, EngineDeps['executors'][StepKind]>,
      observe: async () => state,
      notify: { planChanged: async () => undefined, thread: async (_r, t) => void said.push(t), record: async () => undefined },
      enqueueStep: async () => undefined,
      approvalTtlMs: 15 * 60_000,
      now: () => now,
      log: createLogger('silent'),
      hmacKey: HMAC_KEY,
      ledger: ledger.ledger,
    });
    await processStep(run.runId, 0, deps(at(0)));
    const gated = (await store.get(run.runId))!;
    expect(gated.gate).toMatchObject({ round: 1, expiresAt: at(15).toISOString() });
    const ok = await store.apply(run.runId, { kind: 'approve', step: 0, hash: gated.gate!.hash, by: 'UBOB', sig: signApproval(HMAC_KEY, { runId: run.runId, step: 0, gateHash: gated.gate!.hash, approver: 'UBOB', at: at(14).toISOString() }) }, at(14));
    expect(ok.changed).toBe(true);
    return { run, ran, said, deps };
  }

  it('given at minute 14 of 15 and picked up at minute 16: the step does not run, it asks again', async () => {
    const { run, ran, said, deps } = await approvedAt14();
    // The fault: no worker picked the approved step up until after the window closed.
    await processStep(run.runId, 0, deps(at(16)));
    expect(ran).toEqual([]);
    const after = (await store.get(run.runId))!;
    expect(after.records[0]).toEqual({ status: 'awaiting_approval' });
    expect(after.gate).toMatchObject({ round: 2, expiresAt: at(31).toISOString() });
    expect(said.join('\n')).toContain(`The approval of step 1 by <@UBOB> expired at ${at(15).toISOString()}, before the step could run: it is void.`);
  });

  it('picked up within the window: the step runs', async () => {
    const { run, ran, deps } = await approvedAt14();
    await processStep(run.runId, 0, deps(at(14.5)));
    expect(ran).toHaveLength(1);
    expect((await store.get(run.runId))!.status).toBe('done');
  });
});
