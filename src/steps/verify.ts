import { z } from 'zod';
import { verify } from '../worker/steps/etcd-steps.js';
import type { Step, StepDefinition } from './types.js';

// dnsNames: once etcd verifies, the DNS names in peer URLs are held against the inventory's addresses (a replace's
// grow-back: a rebuilt master's record may still name its old address). Absent in runs stored before it existed.
const params = z.object({ voters: z.number(), minRevision: z.number(), dnsNames: z.boolean().optional() });
export type VerifyStep = Step<'verify', z.infer<typeof params>>;

/** Every member healthy, with one leader, the voters expected and the revision not behind; after a replace, the peer URLs' DNS names where the inventory puts the members. */
export const verifyStep = {
  kind: 'verify',
  params,
  spec(i: { voters: number; minRevision: number; runbook: 'replace' | 'restore' | 'restore-quorum' }): VerifyStep {
    const step = (title: string, operation: string): VerifyStep => ({ kind: 'verify', title, destructive: false, operation, params: { voters: i.voters, minRevision: i.minRevision } });
    switch (i.runbook) {
      case 'replace':
        return {
          ...step(
            'Verify every member healthy and the revision intact',
            `every member answers with one leader, ${i.voters} voters, no learner; revision ≥ ${i.minRevision}; then each DNS name in a peer URL resolves to its member's address in the inventory (a name that does not ends the run with a caveat naming the record, not a failure)`,
          ),
          params: { voters: i.voters, minRevision: i.minRevision, dnsNames: true },
        };
      case 'restore':
        return step('Verify every member healthy at the snapshot', `every member answers with one leader, ${i.voters} voters; revision ≥ ${i.minRevision} (the snapshot's)`);
      case 'restore-quorum':
        return step('Verify every member healthy', `every member answers with one leader, ${i.voters} voters, no learner; revision ≥ ${i.minRevision}`);
    }
  },
  execute: (ctx, step) => verify(ctx.etcd, step),
} satisfies StepDefinition<'verify'>;
