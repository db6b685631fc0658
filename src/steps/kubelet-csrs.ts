import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { approveKubeletCsrs, unitLookOf } from '../worker/steps/kubelet-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({
  nodes: z.array(z.string()),
  waitSeconds: z.number(),
});
export type KubeletCsrsStep = Step<'kubelet-csrs', z.infer<typeof params>>;

/**
 * The waves of CSRs the restarted kubelets file (each node's client CSR, then,
 * once that is issued and the node registers, its serving CSR), approved by the
 * bot for the person who approved this step, each only if it passes the CSR
 * policy (src/kube/csr-policy.ts) and is for one of the run's nodes; a flagged
 * one is shown in the thread for people to decide. Until every node is Ready.
 */
export const kubeletCsrsStep = {
  kind: 'kubelet-csrs',
  params,
  spec(i: { cluster: ClusterConfig; nodes: string[] }): KubeletCsrsStep {
    const wait = i.cluster.kubeReadyWaitSeconds;
    return {
      kind: 'kubelet-csrs',
      title: `Approve the kubelets' client and serving CSRs of ${i.nodes.join(', ')} until every node is Ready`,
      destructive: true,
      operation: `through ${i.cluster.kubeconfig}: every few seconds, list the CSRs and Nodes; approve (approval subresource, as \`kubectl certificate approve\`) each pending kubelet client or serving CSR filed since this run began for ${i.nodes.join(', ')} that passes the CSR policy, for the person who approves this step; post each wave in this thread; a FLAGGED CSR is shown here for people to decide and never approved by the bot; every 10 s, \`systemctl is-active\` of the kubelets not back yet (over SSH, read only): one not running is named here at once, and the wait ends as soon as every node not back has its kubelet down. Ends when ${i.nodes.join(', ')} are Ready with no CSR of theirs pending, or after ${wait} s (the run then ends saying which nodes are not back)`,
      params: { nodes: i.nodes, waitSeconds: wait },
    };
  },
  // It stops on a stop request, and once this worker lost the run lease: a late worker approves nothing more.
  // Every few seconds it also asks, over SSH, the kubelet units of the nodes not back yet: one not running is named at once.
  execute: (ctx, step) => approveKubeletCsrs(ctx.kube, ctx.run, ctx.index, step, ctx.stop, ctx.leaseLost, undefined, unitLookOf(ctx.host, ctx.run, ctx.leaseLost)),
} satisfies StepDefinition<'kubelet-csrs'>;
