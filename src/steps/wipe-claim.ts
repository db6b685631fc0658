import { z } from 'zod';
import { undoWipeClaim, wipeClaim } from '../worker/steps/workload-steps.js';
import type { Step, StepDefinition } from './types.js';
import { kubectlIn, workloadPlace } from './workload-place.js';

const params = z.object({ place: workloadPlace, peerUrl: z.string() });
export type WipeClaimStep = Step<'wipe-claim', z.infer<typeof params>>;

/** The removed member's data moved aside on its claim by a utility pod (the seed's steps 6 to 8, without rm -rf). */
export const wipeClaimStep = {
  kind: 'wipe-claim',
  params,
  spec: (i: z.infer<typeof params> & { runId: string }): WipeClaimStep => ({
    kind: 'wipe-claim',
    title: `Move ${i.place.pod}'s data aside on its claim ${i.place.claim}`,
    destructive: true,
    operation: `${kubectlIn(i.place)} create pod ${i.place.utilityPod} (${i.place.utilityImage}, on the claim's node, claim ${i.place.claim} at ${i.place.dataMountPath}) running: mv ${i.place.dataMountPath}/* ${i.place.dataMountPath}/before-${i.runId}/; wait until it Succeeded; the pod is kept (a resumed step reads what it did there) and deleted before the node is uncordoned. Refused while etcd lists ${i.place.pod} or its pod runs`,
    params: { place: i.place, peerUrl: i.peerUrl },
  }),
  execute: (ctx, step) => wipeClaim(ctx.workload, step, ctx.run, ctx.stop),
  undo: (ctx, step) => undoWipeClaim(ctx.workload, step, ctx.run),
} satisfies StepDefinition<'wipe-claim'>;
