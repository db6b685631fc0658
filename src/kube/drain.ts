import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeCluster } from './client.js';
import { KubeError } from './errors.js';
import { pause } from './pause.js';
import { getPod, type Pod } from './pods.js';

/** Cordons (true) or uncordons a node, as `kubectl cordon` does; "already" when it was so (a step run again). */
export async function setUnschedulable(k: KubeCluster, node: string, on: boolean, beforeWrite?: (what: string) => Promise<void>): Promise<'changed' | 'already'> {
  const n = await k.call((o) => k.core.readNode({ name: node }, o));
  if (!!n.spec?.unschedulable === on) return 'already';
  await beforeWrite?.(`the ${on ? 'cordon' : 'uncordon'} of node ${node}`);
  const body = { spec: { unschedulable: on ? true : null } };
  await k.call((o) => k.core.patchNode({ name: node, body }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch, o)));
  return 'changed';
}

/** The pods bound to a node, in every namespace. */
export async function podsOnNode(k: KubeCluster, node: string): Promise<Pod[]> {
  const list = await k.call((o) => k.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` }, o));
  return list.items;
}

/** Pods a drain leaves where they are, as `kubectl drain --ignore-daemonsets` does: DaemonSet pods, mirror pods of static pods, finished pods. */
export function drainSkips(p: Pod): string | null {
  if (p.metadata?.annotations?.['kubernetes.io/config.mirror']) return 'a mirror pod';
  if ((p.metadata?.ownerReferences ?? []).some((r) => r.controller && r.kind === 'DaemonSet')) return 'DaemonSet-managed';
  if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') return 'finished';
  return null;
}

export type Eviction = { result: 'evicted' | 'gone' } | { result: 'blocked'; reason: string };

/** One eviction through the pods/eviction subresource: "blocked" (429) when a PodDisruptionBudget does not allow it now. */
export async function evictPod(k: KubeCluster, namespace: string, name: string): Promise<Eviction> {
  try {
    await k.call((o) => k.core.createNamespacedPodEviction({ name, namespace, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } } }, o));
    return { result: 'evicted' };
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return { result: 'gone' };
    if (err instanceof KubeError && err.kind === 'too-many-requests') return { result: 'blocked', reason: err.reason };
    throw err;
  }
}

export interface DrainResult {
  /** Pods evicted now, namespace/name. */
  evicted: string[];
  /** Pods left on purpose, with why. */
  skipped: string[];
  /** The node was cordoned by this call (false: it already was). */
  cordoned: boolean;
}

/**
 * `kubectl drain`: cordon, evict every pod bound to the node (retrying while a
 * PDB holds one back), and wait until each is gone (deleted, or made again by
 * its controller as a new pod that is not on this node). Bounded: past
 * `timeoutMs` it throws, naming the pods still there and what held them.
 * Looks before it acts: on a drained node it evicts nothing. `beforeWrite`
 * runs before the cordon and before each eviction, and stops the drain by throwing.
 */
export async function drainNode(k: KubeCluster, node: string, opts: { timeoutMs: number; everyMs?: number; signal?: AbortSignal; beforeWrite?: (what: string) => Promise<void> }): Promise<DrainResult> {
  const deadline = Date.now() + opts.timeoutMs;
  stopped(opts.signal, node);
  const cordoned = (await setUnschedulable(k, node, true, opts.beforeWrite)) === 'changed';
  const evicted: string[] = [];
  const skipped: string[] = [];
  const held = new Map<string, string>();
  const waiting = new Map<string, string>(); // namespace/name → uid evicted
  for (;;) {
    stopped(opts.signal, node);
    const pods = await podsOnNode(k, node);
    const left: Pod[] = [];
    for (const p of pods) {
      const id = `${p.metadata?.namespace}/${p.metadata?.name}`;
      const skip = drainSkips(p);
      if (skip) {
        if (!skipped.some((s) => s.startsWith(`${id} `))) skipped.push(`${id} (${skip})`);
        continue;
      }
      if (waiting.get(id) === p.metadata?.uid) {
        left.push(p);
        continue;
      }
      await opts.beforeWrite?.(`the eviction of ${id}`);
      const e = await evictPod(k, p.metadata!.namespace!, p.metadata!.name!);
      if (e.result === 'blocked') held.set(id, e.reason);
      else {
        held.delete(id);
        if (e.result === 'evicted') evicted.push(id);
        waiting.set(id, p.metadata!.uid!);
      }
      left.push(p);
    }
    // Gone means: no pod of that name with the evicted UID is still bound here.
    const still = [];
    for (const p of left) {
      const now = await getPod(k, p.metadata!.namespace!, p.metadata!.name!);
      if (now && now.metadata?.uid === p.metadata?.uid && now.spec?.nodeName === node) still.push(p);
    }
    if (still.length === 0) return { evicted, skipped, cordoned };
    if (Date.now() >= deadline) {
      const names = still.map((p) => {
        const id = `${p.metadata?.namespace}/${p.metadata?.name}`;
        return held.has(id) ? `${id} (${held.get(id)})` : `${id} (evicted, not gone yet)`;
      });
      throw new KubeError('timeout', `node ${node} not drained within ${Math.round(opts.timeoutMs / 1000)} s: ${names.join('; ')}`);
    }
    await pause(opts.everyMs ?? 500, opts.signal);
  }
}

/** A stop request (cancel, reject) ends a drain between two looks: it may otherwise wait for its whole bound. */
function stopped(signal: AbortSignal | undefined, node: string): void {
  if (signal?.aborted) throw new KubeError('error', `the drain of node ${node} was stopped before it finished (the node stays cordoned)`);
}
