import type { V1Node } from '@kubernetes/client-node';
import type { KubeCluster } from './client.js';
import { KubeError } from './errors.js';

export type KubeNode = V1Node;

/** The labels kubeadm and OpenShift put on control-plane nodes ("master" before Kubernetes 1.20). */
export const CONTROL_PLANE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'] as const;

export interface NodeSummary {
  name: string;
  controlPlane: boolean;
  /** true, false, or null when the node has no Ready condition (its kubelet never reported). */
  ready: boolean | null;
  /** When Ready last changed, and why (the kubelet's reason and message). */
  readySince?: Date;
  readyReason?: string;
  readyMessage?: string;
  kubeletVersion?: string;
  internalIPs: string[];
  externalIPs: string[];
  hostnames: string[];
}

export function isControlPlane(node: KubeNode): boolean {
  const labels = node.metadata?.labels ?? {};
  return CONTROL_PLANE_LABELS.some((l) => l in labels);
}

/** What `/etcd nodes` shows of a node, read from its status. */
export function summarizeNode(node: KubeNode): NodeSummary {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const addrs = node.status?.addresses ?? [];
  const of = (type: string) => addrs.filter((a) => a.type === type).map((a) => a.address);
  return {
    name: node.metadata?.name ?? '',
    controlPlane: isControlPlane(node),
    ready: ready ? ready.status === 'True' : null,
    readySince: ready?.lastTransitionTime,
    readyReason: ready?.reason,
    readyMessage: ready?.message,
    kubeletVersion: node.status?.nodeInfo?.kubeletVersion,
    internalIPs: of('InternalIP'),
    externalIPs: of('ExternalIP'),
    hostnames: of('Hostname'),
  };
}

export async function listNodes(k: KubeCluster): Promise<KubeNode[]> {
  const list = await k.call((o) => k.core.listNode({}, o));
  return list.items;
}

/**
 * The control-plane nodes, by name. A label selector cannot say "either label",
 * so it asks once per label; the result is filtered again here so a server that
 * ignores the selector cannot slip workers in.
 */
export async function listControlPlaneNodes(k: KubeCluster): Promise<KubeNode[]> {
  const lists = await Promise.all(CONTROL_PLANE_LABELS.map((labelSelector) => k.call((o) => k.core.listNode({ labelSelector }, o))));
  const byName = new Map<string, KubeNode>();
  for (const n of lists.flatMap((l) => l.items)) if (isControlPlane(n)) byName.set(n.metadata?.name ?? '', n);
  return [...byName.values()].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

/** One node by name; null when there is none (a master whose kubelet has not registered yet). */
export async function getNode(k: KubeCluster, name: string): Promise<KubeNode | null> {
  try {
    return await k.call((o) => k.core.readNode({ name }, o));
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return null;
    throw err;
  }
}
