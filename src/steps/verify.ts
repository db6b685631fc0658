import { z } from 'zod';
import { verify } from '../worker/steps/etcd-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ voters: z.number(), minRevision: z.number() });
export type VerifyStep = Step<'verify', z.infer<typeof params>>;

/** Every member healthy, with one leader, the voters expected and the revision not behind. */
export const verifyStep = {
  kind: 'verify',
  params,
  spec(i: { voters: number; minRevision: number; runbook: 'replace' | 'restore' | 'restore-quorum' }): VerifyStep {
    const step = (title: string, operation: string): VerifyStep => ({ kind: 'verify', title, destructive: false, operation, params: { voters: i.voters, minRevision: i.minRevision } });
    switch (i.runbook) {
      case 'replace':
        return step('Verify every member healthy and the revision intact', `every member answers with one leader, ${i.voters} voters, no learner; revision ≥ ${i.minRevision}`);
      case 'restore':
        return step('Verify every member healthy at the snapshot', `every member answers with one leader, ${i.voters} voters; revision ≥ ${i.minRevision} (the snapshot's)`);
      case 'restore-quorum':
        return step('Verify every member healthy', `every member answers with one leader, ${i.voters} voters, no learner; revision ≥ ${i.minRevision}`);
    }
  },
  execute: (ctx, step) => verify(ctx.etcd, step),
} satisfies StepDefinition<'verify'>;
