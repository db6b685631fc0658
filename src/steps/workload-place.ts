import { z } from 'zod';
import type { WorkloadPlace } from '../platform/index.js';

/** A member's objects in the admin cluster (src/platform WorkloadPlace), as the steps of a statefulset replace hold them. */
export const workloadPlace: z.ZodType<WorkloadPlace> = z.object({
  namespace: z.string(),
  statefulSet: z.string(),
  container: z.string(),
  pdb: z.string(),
  pod: z.string(),
  claim: z.string(),
  dataMountPath: z.string(),
  utilityPod: z.string(),
  utilityImage: z.string(),
  drainTimeoutSeconds: z.number(),
});

/** How a plan names the admin cluster's objects: `kubectl -n <ns>` in the operation text, as the seed procedure writes it. */
export const kubectlIn = (p: WorkloadPlace) => `kubectl -n ${p.namespace}`;
