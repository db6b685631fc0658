import { z } from 'zod';
import { promote } from '../worker/steps/etcd-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ name: z.string(), peerUrl: z.string() });
export type PromoteStep = Step<'promote', z.infer<typeof params>>;

/** The caught-up learner promoted to voter, through the etcd API. */
export const promoteStep = {
  kind: 'promote',
  params,
  spec: (i: { name: string; peerUrl: string }): PromoteStep => ({
    kind: 'promote',
    title: `Promote ${i.name} to voter`,
    destructive: false,
    operation: `cluster.memberPromote(<new ID of ${i.name}>), retried with backoff while it lags (at most 120 s)`,
    params: { name: i.name, peerUrl: i.peerUrl },
  }),
  execute: (ctx, step) => promote(ctx.etcd, step),
} satisfies StepDefinition<'promote'>;
