import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { refreshBudgets, podReady } from '../kube/disruption.js';
import { resourceType, type KubeObject, type ObjectStore } from '../kube/store.js';

const PODS = resourceType('pods', '')!;
const PVCS = resourceType('persistentvolumeclaims', '')!;
const NODES = resourceType('nodes', '')!;
const STS = resourceType('statefulsets', 'apps')!;

/** The annotation that binds a claim to the node its local volume lives on (WaitForFirstConsumer binding). */
export const SELECTED_NODE = 'volume.kubernetes.io/selected-node';

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export interface ControllerOptions {
  /** A StatefulSet pod's address: stable per ordinal, as its headless-service name is. */
  podIp(ordinal: number): string;
  /** The directory of a claim's local volume. */
  claimDir(namespace: string, claim: string): string;
}

/**
 * kube-controller-manager's StatefulSet and disruption controllers and the
 * scheduler, for the StatefulSet lab. Each pass:
 * - every StatefulSet has its claims (`<template>-<pod>`, made once, never
 *   deleted) and its pods `<name>-<ordinal>` (Parallel: all missing ones at
 *   once; OrderedReady: the next only when the lower ones are Ready), each
 *   made from the template as it is now. Running pods are left alone when the
 *   template changes: the stand-in plays updateStrategy OnDelete only, the
 *   strategy of the lab's kube-etcd (a new template reaches a pod when the pod is
 *   deleted and made again);
 * - an unbound pod is bound to the node its claim's local volume sits on, and
 *   stays Pending (PodScheduled False, Unschedulable) while that node is
 *   cordoned; a pod with spec.nodeName set skips the scheduler, as on a real
 *   cluster, cordoned node or not;
 * - the StatefulSets' and PDBs' statuses follow their pods.
 */
export class StatefulSetController {
  constructor(
    private readonly store: ObjectStore,
    private readonly o: ControllerOptions,
  ) {}

  tick(): void {
    for (const sts of this.store.list(STS).items) this.reconcile(sts);
    this.schedule();
    refreshBudgets(this.store);
  }

  private reconcile(sts: KubeObject): void {
    const ns = sts.metadata.namespace!;
    const replicas = sts.spec?.replicas ?? 1;
    const revision = `${sts.metadata.name}-${createHash('sha256').update(JSON.stringify(sts.spec.template)).digest('hex').slice(0, 10)}`;
    const parallel = sts.spec?.podManagementPolicy === 'Parallel';
    for (let i = 0; i < replicas; i++) {
      const podName = `${sts.metadata.name}-${i}`;
      const claims = (sts.spec.volumeClaimTemplates ?? []).map((t: any) => this.claim(sts, t, podName));
      if (this.store.find(PODS, podName, ns)) continue;
      if (!parallel && !Array.from({ length: i }, (_, j) => this.store.find(PODS, `${sts.metadata.name}-${j}`, ns)).every((p) => p && podReady(p))) break;
      const t = sts.spec.template;
      this.store.create(PODS, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: podName,
          namespace: ns,
          labels: { ...(t.metadata?.labels ?? {}), 'statefulset.kubernetes.io/pod-name': podName, 'apps.kubernetes.io/pod-index': String(i), 'controller-revision-hash': revision },
          annotations: t.metadata?.annotations,
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: sts.metadata.name, uid: sts.metadata.uid, controller: true, blockOwnerDeletion: true }],
        },
        spec: {
          ...t.spec,
          hostname: podName,
          subdomain: sts.spec.serviceName,
          restartPolicy: t.spec.restartPolicy ?? 'Always',
          volumes: [...(t.spec.volumes ?? []), ...claims.map((c: { template: string; name: string }) => ({ name: c.template, persistentVolumeClaim: { claimName: c.name } }))],
        },
        status: { phase: 'Pending', conditions: [] },
      });
    }
    const pods = Array.from({ length: replicas }, (_, i) => this.store.find(PODS, `${sts.metadata.name}-${i}`, ns)).filter((p): p is KubeObject => !!p);
    const ready = pods.filter(podReady).length;
    const current = pods.filter((p) => p.metadata.labels?.['controller-revision-hash'] === revision).length;
    const status = { observedGeneration: sts.metadata.generation ?? 1, replicas: pods.length, readyReplicas: ready, availableReplicas: ready, currentReplicas: current, updatedReplicas: current, currentRevision: revision, updateRevision: revision, collisionCount: 0 };
    if (JSON.stringify({ ...sts.status, ...status }) !== JSON.stringify(sts.status)) this.store.update(STS, sts.metadata.name, ns, { ...sts, status: { ...sts.status, ...status } });
  }

  /** A pod's claim from the template, made on first need and kept (StatefulSets never delete their claims). */
  private claim(sts: KubeObject, t: any, podName: string): { template: string; name: string } {
    const ns = sts.metadata.namespace!;
    const name = `${t.metadata.name}-${podName}`;
    mkdirSync(this.o.claimDir(ns, name), { recursive: true, mode: 0o700 });
    if (!this.store.find(PVCS, name, ns)) {
      this.store.create(PVCS, {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name, namespace: ns, labels: { ...(sts.spec.selector?.matchLabels ?? {}) } },
        spec: { ...t.spec, volumeName: `pv-${ns}-${name}`, volumeMode: t.spec?.volumeMode ?? 'Filesystem', storageClassName: t.spec?.storageClassName ?? 'local' },
        status: { phase: 'Bound', accessModes: t.spec?.accessModes ?? ['ReadWriteOnce'], capacity: { storage: t.spec?.resources?.requests?.storage ?? '1Gi' } },
      });
    }
    return { template: t.metadata.name, name };
  }

  private schedule(): void {
    const nodes = this.store.list(NODES).items;
    const usable = (n: KubeObject) => !n.spec?.unschedulable && (n.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
    for (const pod of this.store.list(PODS).items) {
      if (pod.spec?.nodeName || (pod.status?.phase ?? 'Pending') !== 'Pending') continue;
      const ns = pod.metadata.namespace!;
      const claims = (pod.spec.volumes ?? []).filter((v: any) => v.persistentVolumeClaim).map((v: any) => this.store.find(PVCS, v.persistentVolumeClaim.claimName, ns));
      if (claims.some((c: KubeObject | undefined) => !c)) continue; // unbound claim: stays Pending
      const pinned = claims.map((c: KubeObject) => c.metadata.annotations?.[SELECTED_NODE]).find(Boolean) as string | undefined;
      const ordinal = Number(pod.metadata.labels?.['apps.kubernetes.io/pod-index'] ?? NaN);
      const preferred = pinned ?? (Number.isInteger(ordinal) ? nodes[ordinal % nodes.length]?.metadata.name : undefined);
      const node = nodes.find((n) => n.metadata.name === preferred && usable(n)) ?? (pinned ? undefined : nodes.find(usable));
      if (!node) {
        const unschedulable = nodes.filter((n) => n.spec?.unschedulable).length;
        const message = `0/${nodes.length} nodes are available: ${unschedulable} node(s) were unschedulable${pinned ? `, ${nodes.length - unschedulable} node(s) had volume node affinity conflict` : ''}. preemption: 0/${nodes.length} nodes are available: ${nodes.length} Preemption is not helpful for scheduling.`;
        this.condition(pod, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message });
        continue;
      }
      for (const c of claims as KubeObject[]) {
        if (!c.metadata.annotations?.[SELECTED_NODE]) this.store.update(PVCS, c.metadata.name, ns, { ...c, metadata: { ...c.metadata, annotations: { ...c.metadata.annotations, [SELECTED_NODE]: node.metadata.name } } });
      }
      const hostIP = (node.status?.addresses ?? []).find((a: any) => a.type === 'InternalIP')?.address;
      const cur = this.store.get(PODS, pod.metadata.name, ns);
      this.store.update(PODS, pod.metadata.name, ns, {
        ...cur,
        spec: { ...cur.spec, nodeName: node.metadata.name },
        status: { ...cur.status, hostIP, podIP: Number.isInteger(ordinal) ? this.o.podIp(ordinal) : hostIP, conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: now() }] },
      });
    }
  }

  private condition(pod: KubeObject, c: Record<string, string>): void {
    const old = (pod.status?.conditions ?? []).find((x: any) => x.type === c.type);
    if (old && old.status === c.status && old.message === c.message) return;
    const conditions = [...(pod.status?.conditions ?? []).filter((x: any) => x.type !== c.type), { ...c, lastTransitionTime: now() }];
    this.store.update(PODS, pod.metadata.name, pod.metadata.namespace, { ...pod, status: { ...pod.status, conditions } });
  }
}
