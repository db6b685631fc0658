import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import type { EtcdOperatorResource } from '../platform/index.js';
import { forceRedeployment } from '../worker/steps/kube-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({
  resource: z.object({ group: z.string(), version: z.string(), plural: z.string(), name: z.string() }),
  /** Every reason this run sets starts with it (`recovery-<run id>`): one already there was set by this run. */
  reasonPrefix: z.string(),
  /** How long the API server may take to answer again after the restore before the step gives up saying so. */
  waitSeconds: z.number(),
});
export type ForceRedeploymentStep = Step<'force-redeployment', z.infer<typeof params>>;

/**
 * The end of a restore on a cluster whose etcd pods an operator writes
 * (OpenShift 4.4+): the operator's resource gets a new
 * spec.forceRedeploymentReason, as the disaster-recovery procedure's
 * `oc patch etcd cluster -p '{"spec": {"forceRedeploymentReason": "recovery-…"}}' --type=merge`,
 * so it rolls out a new revision of etcd-pod.yaml on every master (the
 * manifests the run wrote, its flags included, are replaced by the
 * operator's). Run again after a crash, it sees the reason this run set and
 * sets nothing a second time. Not destructive: the operator replaces one
 * master's pod at a time, keeping quorum.
 */
export const forceRedeploymentStep = {
  kind: 'force-redeployment',
  params,
  spec(i: { cluster: ClusterConfig; resource: EtcdOperatorResource; runId: string }): ForceRedeploymentStep {
    const { cluster, resource, runId } = i;
    const reasonPrefix = `recovery-${runId}`;
    return {
      kind: 'force-redeployment',
      title: 'Force the etcd operator to redeploy etcd on every master',
      destructive: false,
      operation: `PATCH ${resource.plural}.${resource.group}/${resource.name} (through ${cluster.kubeconfig}), merge patch {"spec":{"forceRedeploymentReason":"${reasonPrefix}-<time>"}} (as \`oc patch etcd ${resource.name} --type=merge\`), unless a reason of this run is set already; the operator then rolls out a new revision of etcd-pod.yaml, one master at a time, replacing the manifests this run wrote. Waits up to ${cluster.kubeReadyWaitSeconds} s for the API server to answer`,
      params: { resource, reasonPrefix, waitSeconds: cluster.kubeReadyWaitSeconds },
    };
  },
  execute: (ctx, step) => forceRedeployment(ctx.kube, step, ctx.stop),
} satisfies StepDefinition<'force-redeployment'>;
