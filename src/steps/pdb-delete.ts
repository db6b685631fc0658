import { z } from 'zod';
import { pdbDelete, savedPdbPath, undoPdbDelete } from '../worker/steps/workload-steps.js';
import type { Step, StepDefinition } from './types.js';
import { kubectlIn, workloadPlace } from './workload-place.js';

const params = z.object({ place: workloadPlace, saveDir: z.string() });
export type PdbDeleteStep = Step<'pdb-delete', z.infer<typeof params>>;

/** The seed's steps 1 and 2: the PDB's full object saved (beside the run's backups and on the run), then deleted. */
export const pdbDeleteStep = {
  kind: 'pdb-delete',
  params,
  spec: (i: z.infer<typeof params> & { runId: string }): PdbDeleteStep => ({
    kind: 'pdb-delete',
    title: `Save and delete the PodDisruptionBudget ${i.place.pdb}`,
    destructive: true,
    operation: `${kubectlIn(i.place)} get pdb ${i.place.pdb} -o json > ${savedPdbPath(i.saveDir, i.place.pdb, i.runId)}; ${kubectlIn(i.place)} delete pdb ${i.place.pdb} (made again at the end, and by a run that stops before it)`,
    params: { place: i.place, saveDir: i.saveDir },
  }),
  execute: (ctx, step) => pdbDelete(ctx.workload, step, ctx.run),
  undo: (ctx, step) => undoPdbDelete(ctx.workload, step, ctx.run),
} satisfies StepDefinition<'pdb-delete'>;
