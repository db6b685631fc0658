import { describe, expect, it } from 'vitest';
import type { RunStore } from '../../src/runbook/store.js';
import type { StepOf } from '../../src/runbook/types.js';
import { watchForStop } from '../../src/worker/abort-watcher.js';
import { waitCaughtUp, type EtcdStepContext } from '../../src/worker/steps/etcd-steps.js';
import { threeMasters } from '../support/fixtures.js';

describe('stopping a long step', () => {
  it('the watcher fires once the run gets a stop request, saying who asked, and not before', async () => {
    let stopRequest: { kind: 'cancel'; by: string; at: string } | undefined;
    let reads = 0;
    // The fault a watcher must survive: a read that fails now and then (Redis briefly away).
    const runs = { get: async () => (++reads === 2 ? Promise.reject(new Error('Connection is closed')) : { stopRequest }) } as unknown as RunStore;
    const w = watchForStop(runs, 'r-1', 20);
    try {
      await new Promise((r) => setTimeout(r, 120));
      expect(w.signal.aborted).toBe(false);
      stopRequest = { kind: 'cancel', by: 'UALICE', at: '2026-11-27T00:00:00.000Z' };
      const t0 = Date.now();
      await new Promise((r) => w.signal.addEventListener('abort', r, { once: true }));
      expect(Date.now() - t0).toBeLessThan(500);
      expect((w.signal.reason as Error).message).toBe('cancelled by <@UALICE> at 2026-11-27T00:00:00.000Z');
    } finally {
      w.stop();
    }
  });

  it('the catch-up wait ends at once on a stop request instead of waiting out its 180 s', async () => {
    const { cluster } = threeMasters('{ roles: { read: ["*"] } }');
    const ctx = { cluster } as EtcdStepContext;
    const step = { kind: 'wait-caught-up', title: 'Wait', destructive: false, operation: '', params: { name: 'm3', peerUrl: 'https://10.0.0.3:2380' } } satisfies StepOf<'wait-caught-up'>;
    await expect(waitCaughtUp(ctx, step, AbortSignal.abort(new Error('cancelled by <@UALICE>')))).rejects.toThrow('stopped waiting for m3 (last: not yet seen): cancelled by <@UALICE>');
  });
});
