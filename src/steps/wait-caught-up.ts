import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { waitCaughtUp } from '../worker/steps/etcd-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ name: z.string(), peerUrl: z.string() });
export type WaitCaughtUpStep = Step<'wait-caught-up', z.infer<typeof params>>;

/** Polls the new learner until it is started and close enough to the leader's raft index to be promoted. */
export const waitCaughtUpStep = {
  kind: 'wait-caught-up',
  params,
  spec(i: { cluster: ClusterConfig; name: string; peerUrl: string; runbook: 'replace' | 'restore-quorum' }): WaitCaughtUpStep {
    const lag = i.cluster.etcd.lagWarnEntries;
    return {
      kind: 'wait-caught-up',
      title: `Wait until ${i.name} has caught up`,
      destructive: false,
      operation:
        i.runbook === 'replace'
          ? `poll ${i.name}'s status until it is started and its raft index is within ${lag} entries of the leader's (at most 180 s)`
          : `poll ${i.name}'s status until it is started and within ${lag} raft entries of the leader (at most 180 s)`,
      params: { name: i.name, peerUrl: i.peerUrl },
    };
  },
  execute: (ctx, step) => waitCaughtUp(ctx.etcd, step, ctx.stop),
} satisfies StepDefinition<'wait-caught-up'>;
