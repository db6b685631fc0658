import { z } from 'zod';
import { uncordon } from '../worker/steps/workload-steps.js';
import type { Step, StepDefinition } from './types.js';
import { kubectlIn, workloadPlace } from './workload-place.js';

const params = z.object({ place: workloadPlace });
export type UncordonStep = Step<'uncordon', z.infer<typeof params>>;

/** The node schedulable again: the StatefulSet's pod of the member starts there, from the template (state existing). */
export const uncordonStep = {
  kind: 'uncordon',
  params,
  spec: (i: z.infer<typeof params>): UncordonStep => ({
    kind: 'uncordon',
    title: `Uncordon the node of ${i.place.pod}; its pod starts again`,
    destructive: false,
    operation: `${kubectlIn(i.place)} delete pod ${i.place.utilityPod} (the wipe's, once ended); kubectl uncordon <node of claim ${i.place.claim}>; wait until pod ${i.place.pod} (made again by the StatefulSet controller) is Running (at most 120 s)`,
    params: { place: i.place },
  }),
  execute: (ctx, step) => uncordon(ctx.workload, step, ctx.run, ctx.stop),
} satisfies StepDefinition<'uncordon'>;
