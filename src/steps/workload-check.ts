import { z } from 'zod';
import { workloadCheck } from '../worker/steps/workload-steps.js';
import type { Step, StepDefinition } from './types.js';
import { kubectlIn, workloadPlace } from './workload-place.js';

const params = z.object({ place: workloadPlace });
export type WorkloadCheckStep = Step<'workload-check', z.infer<typeof params>>;

/** Reads only: the admin cluster answers, the StatefulSet is OnDelete with the flag, the failed replica's pod, node and claim are there. */
export const workloadCheckStep = {
  kind: 'workload-check',
  params,
  spec: (i: z.infer<typeof params>): WorkloadCheckStep => ({
    kind: 'workload-check',
    title: `Check ${i.place.pod}'s pod, node and claim in the admin cluster`,
    destructive: false,
    operation: `${kubectlIn(i.place)} get statefulset ${i.place.statefulSet} (updateStrategy OnDelete, --initial-cluster-state), pod ${i.place.pod} and its node, pvc ${i.place.claim}, pdb ${i.place.pdb}: read only`,
    params: { place: i.place },
  }),
  execute: (ctx, step) => workloadCheck(ctx.workload, step),
} satisfies StepDefinition<'workload-check'>;
