import { z } from 'zod';
import { pdbRestore, savedPdbPath } from '../worker/steps/workload-steps.js';
import type { Step, StepDefinition } from './types.js';
import { kubectlIn, workloadPlace } from './workload-place.js';

const params = z.object({ place: workloadPlace, saveDir: z.string() });
export type PdbRestoreStep = Step<'pdb-restore', z.infer<typeof params>>;

/** The seed's last step: the saved PDB made again. */
export const pdbRestoreStep = {
  kind: 'pdb-restore',
  params,
  spec: (i: z.infer<typeof params> & { runId: string }): PdbRestoreStep => ({
    kind: 'pdb-restore',
    title: `Make the PodDisruptionBudget ${i.place.pdb} again`,
    destructive: false,
    operation: `${kubectlIn(i.place)} create -f ${savedPdbPath(i.saveDir, i.place.pdb, i.runId)} (the object the run saved, without its server fields)`,
    params: { place: i.place, saveDir: i.saveDir },
  }),
  execute: (ctx, step) => pdbRestore(ctx.workload, step, ctx.run),
} satisfies StepDefinition<'pdb-restore'>;
