import { z } from 'zod';
import { writeCheck } from '../worker/steps/defrag-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ key: z.string(), voters: z.number() });
export type WriteCheckStep = Step<'write-check', z.infer<typeof params>>;

/** Writes work again: a key put, read back and deleted; every member healthy; no alarm left. */
export const writeCheckStep = {
  kind: 'write-check',
  params,
  spec: (i: { runId: string; voters: number }): WriteCheckStep => {
    const key = `/etcd-medic/write-check/${i.runId}`;
    return {
      kind: 'write-check',
      title: 'Verify writes work and the cluster is healthy',
      destructive: false,
      operation: `put ${key}, read it back, delete it (as etcdctl put / get / del); every member answers with one leader, ${i.voters} voters; the alarm list is empty`,
      params: { key, voters: i.voters },
    };
  },
  execute: (ctx, step) => writeCheck({ ...ctx.etcd, stop: ctx.stop, leaseLost: ctx.leaseLost }, step),
} satisfies StepDefinition<'write-check'>;
