import { z } from 'zod';
import { drain, undoDrain } from '../worker/steps/workload-steps.js';
import type { Step, StepDefinition } from './types.js';
import { workloadPlace } from './workload-place.js';

const params = z.object({ place: workloadPlace });
export type DrainStep = Step<'drain', z.infer<typeof params>>;

/** The failed replica's node cordoned and drained through evictions (PDBs respected), within a bound. */
export const drainStep = {
  kind: 'drain',
  params,
  spec: (i: z.infer<typeof params>): DrainStep => ({
    kind: 'drain',
    title: `Drain the node of ${i.place.pod}`,
    destructive: false,
    operation: `kubectl drain <node of claim ${i.place.claim}> --ignore-daemonsets --delete-emptydir-data --timeout=${i.place.drainTimeoutSeconds}s: cordon, evict every pod bound there (a PodDisruptionBudget may hold one back), wait until they are gone`,
    params: { place: i.place },
  }),
  execute: (ctx, step) => drain(ctx.workload, step, ctx.stop),
  undo: (ctx, step) => undoDrain(ctx.workload, step),
} satisfies StepDefinition<'drain'>;
