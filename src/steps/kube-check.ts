import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { APISERVER_PORT } from '../kube/ports.js';
import { kubeCheck } from '../worker/steps/kube-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({
  waitSeconds: z.number(),
  /** One master's Node to wait for, its CSRs shown in the run's thread; absent: every master's API server and Node. */
  node: z.string().optional(),
  /** After a replace: the API load balancer probed for the replaced master (src/worker/lb-check.ts). Absent in runs planned before. */
  loadBalancer: z.boolean().optional(),
});
export type KubeCheckStep = Step<'kube-check', z.infer<typeof params>>;

/**
 * The last step of a run: etcd is back, is Kubernetes? Reads only, so it is
 * safe to run again after a crash, and it never fails the run: what is still
 * missing at the cluster's bound is what the run ends with.
 *
 * Without `node` (the end of a restore): kube-apiserver /readyz on every master
 * and every master's Node Ready. With `node` (the end of a replace, and of each
 * grow-back): that master's Node Ready, the CSRs its kubelet files meanwhile (a
 * rebuilt master's client CSR, then its serving CSR) shown in the run's thread
 * for people to approve with the usual buttons; it approves nothing itself.
 */
export const kubeCheckStep = {
  kind: 'kube-check',
  params,
  spec(i: { cluster: ClusterConfig; node?: string }): KubeCheckStep {
    const { cluster, node } = i;
    const wait = cluster.kubeReadyWaitSeconds;
    if (node !== undefined) {
      return {
        kind: 'kube-check',
        title: `Wait for node ${node} Ready in Kubernetes, its CSRs shown here for approval`,
        destructive: false,
        operation: cluster.kubeconfig
          ? `GET node ${node} (through ${cluster.kubeconfig}) until Ready; its pending CSRs (client CSR for system:node:${node}, then its serving CSR) posted in this thread, each once, for approval with the buttons there: the bot approves nothing itself. Polls for up to ${wait} s; changes nothing, and does not fail the run: what is still missing then is reported ("etcd healthy, Kubernetes not yet"). ` +
            `Then the API load balancer (${cluster.apiLoadBalancer?.url ?? "the kubeconfig's server"}): fresh TLS connections through it, each backend named by its serving certificate; ${node} must be among them and none may land on a server that is no master${cluster.apiLoadBalancer?.backends ? `; its pool as listed in the inventory (${cluster.apiLoadBalancer.backends.join(', ')}) held against the masters' addresses, each entry probed` : ''}. What is wrong ends the run with a caveat saying what to change in the load balancer`
          : `no kubeconfig for this cluster: node ${node} is not checked in Kubernetes (set clusters[].kubeconfig in the inventory to wait for it and show its CSRs here)`,
        params: { waitSeconds: wait, node, ...(cluster.kubeconfig ? { loadBalancer: true } : {}) },
      };
    }
    const masters = cluster.members.map((m) => ({ name: m.name, host: m.host }));
    return {
      kind: 'kube-check',
      title: 'Check Kubernetes: kube-apiserver ready on every master, control-plane nodes Ready',
      destructive: false,
      operation: cluster.kubeconfig
        ? `GET /readyz on ${masters.map((m) => `https://${m.host}:${APISERVER_PORT}`).join(', ')}; nodes ${masters.map((m) => m.name).join(', ')} Ready (through ${cluster.kubeconfig}); pending CSRs counted. Polls for up to ${wait} s; changes nothing, and does not fail the run: what is still missing then is reported ("etcd healthy, Kubernetes not yet")`
        : 'no kubeconfig for this cluster: Kubernetes is not checked (set clusters[].kubeconfig in the inventory to check kube-apiserver and the control-plane nodes)',
      params: { waitSeconds: wait },
    };
  },
  execute: (ctx, step) => kubeCheck(ctx.kube, step, ctx.stop),
} satisfies StepDefinition<'kube-check'>;
