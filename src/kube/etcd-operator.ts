import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { EtcdOperatorResource } from '../platform/index.js';
import type { KubeCluster } from './client.js';

/** `etcds.operator.openshift.io/cluster`, as `oc` names it. */
export function operatorResourceName(r: EtcdOperatorResource): string {
  return `${r.plural}.${r.group}/${r.name}`;
}

/** The operator resource's spec.forceRedeploymentReason ('' when unset). Throws a KubeError (kind 'not-found' when the cluster has no such resource). */
export async function redeploymentReason(k: KubeCluster, r: EtcdOperatorResource): Promise<string> {
  const obj = (await k.call((options) => k.custom.getClusterCustomObject({ group: r.group, version: r.version, plural: r.plural, name: r.name }, options))) as { spec?: { forceRedeploymentReason?: unknown } };
  const reason = obj?.spec?.forceRedeploymentReason;
  return typeof reason === 'string' ? reason : '';
}

/**
 * Sets spec.forceRedeploymentReason with a JSON merge patch, as
 * `oc patch etcd cluster --type=merge -p '{"spec":{"forceRedeploymentReason":…}}'`
 * does: a new value makes the operator roll out a new revision of its static
 * pods, one master at a time. Returns the reason the server then holds.
 */
export async function setRedeploymentReason(k: KubeCluster, r: EtcdOperatorResource, reason: string): Promise<string> {
  const obj = (await k.call((options) =>
    k.custom.patchClusterCustomObject({ group: r.group, version: r.version, plural: r.plural, name: r.name, body: { spec: { forceRedeploymentReason: reason } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch, options)),
  )) as { spec?: { forceRedeploymentReason?: unknown } };
  const now = obj?.spec?.forceRedeploymentReason;
  return typeof now === 'string' ? now : '';
}
