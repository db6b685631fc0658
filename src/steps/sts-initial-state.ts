import { z } from 'zod';
import { stsInitialState, undoInitialState } from '../worker/steps/workload-steps.js';
import type { Step, StepDefinition } from './types.js';
import { kubectlIn, workloadPlace } from './workload-place.js';

const params = z.object({ place: workloadPlace, value: z.enum(['existing', 'new']) });
export type StsInitialStateStep = Step<'sts-initial-state', z.infer<typeof params>>;

/** The StatefulSet's etcd args on `--initial-cluster-state=<value>`: `existing` while a member joins, `new` again after. */
export const stsInitialStateStep = {
  kind: 'sts-initial-state',
  params,
  spec: (i: z.infer<typeof params>): StsInitialStateStep => ({
    kind: 'sts-initial-state',
    title: i.value === 'existing' ? `Set the StatefulSet ${i.place.statefulSet} to --initial-cluster-state=existing` : `Set the StatefulSet ${i.place.statefulSet} back to --initial-cluster-state=new`,
    destructive: false,
    operation: `${kubectlIn(i.place)} patch statefulset ${i.place.statefulSet} --type=json: test and replace the container ${i.place.container}'s --initial-cluster-state=${i.value === 'existing' ? 'new' : 'existing'} with --initial-cluster-state=${i.value} (updateStrategy OnDelete: no running member restarts)`,
    params: { place: i.place, value: i.value },
  }),
  execute: (ctx, step) => stsInitialState(ctx.workload, step),
  undo: (ctx, step) => undoInitialState(ctx.workload, step),
} satisfies StepDefinition<'sts-initial-state'>;
