import { z } from 'zod';
import { memberRemove } from '../worker/steps/etcd-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ idHex: z.string(), name: z.string(), peerUrl: z.string() });
export type MemberRemoveStep = Step<'member-remove', z.infer<typeof params>>;

/** The failed member out of the member list, through the etcd API (the quorum rule checked again live). */
export const memberRemoveStep = {
  kind: 'member-remove',
  params,
  spec: (i: { idHex: string; name: string; peerUrl: string }): MemberRemoveStep => ({
    kind: 'member-remove',
    title: `Remove ${i.name} from the member list`,
    destructive: true,
    operation: `cluster.memberRemove(${i.idHex}), as etcdctl member remove ${i.idHex}`,
    params: { idHex: i.idHex, name: i.name, peerUrl: i.peerUrl },
  }),
  execute: (ctx, step) => memberRemove(ctx.etcd, step),
} satisfies StepDefinition<'member-remove'>;
