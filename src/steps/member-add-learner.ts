import { z } from 'zod';
import { memberAddLearner } from '../worker/steps/etcd-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ name: z.string(), peerUrl: z.string() });
export type MemberAddLearnerStep = Step<'member-add-learner', z.infer<typeof params>>;

/** The member added back as a learner, through the etcd API; `etcdctl`: the plan also shows the etcdctl line. */
export const memberAddLearnerStep = {
  kind: 'member-add-learner',
  params,
  spec: (i: { name: string; peerUrl: string; etcdctl: boolean }): MemberAddLearnerStep => ({
    kind: 'member-add-learner',
    title: `Add ${i.name} back as a learner`,
    destructive: false,
    operation: `cluster.memberAdd(peerURLs=[${i.peerUrl}], isLearner=true)${i.etcdctl ? `, as etcdctl member add ${i.name} --peer-urls=${i.peerUrl} --learner;` : ','} retried while etcd answers "unhealthy cluster"`,
    params: { name: i.name, peerUrl: i.peerUrl },
  }),
  execute: (ctx, step) => memberAddLearner(ctx.etcd, step),
} satisfies StepDefinition<'member-add-learner'>;
