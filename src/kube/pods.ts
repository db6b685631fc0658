import type { V1Pod, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { KubeCluster } from './client.js';
import { pause } from './pause.js';
import { KubeError } from './errors.js';

export type Pod = V1Pod;

export async function getPod(k: KubeCluster, namespace: string, name: string): Promise<Pod | null> {
  try {
    return await k.call((o) => k.core.readNamespacedPod({ name, namespace }, o));
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return null;
    throw err;
  }
}

/** Creates a pod; "already-there" when one of that name exists (the caller looks at what it is). */
export async function createPod(k: KubeCluster, namespace: string, pod: Pod): Promise<'created' | 'already-there'> {
  try {
    await k.call((o) => k.core.createNamespacedPod({ namespace, body: pod }, o));
    return 'created';
  } catch (err) {
    if (err instanceof KubeError && err.status === 409) return 'already-there';
    throw err;
  }
}

export async function deletePod(k: KubeCluster, namespace: string, name: string): Promise<'deleted' | 'already-gone'> {
  try {
    await k.call((o) => k.core.deleteNamespacedPod({ name, namespace }, o));
    return 'deleted';
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return 'already-gone';
    throw err;
  }
}

export const isReady = (p: Pod): boolean => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * Waits until a pod reaches one of the phases (Succeeded, Failed; Running and
 * Ready with `ready`), bounded; the error says the phase it was left in.
 */
export async function waitPod(k: KubeCluster, namespace: string, name: string, until: { phases?: string[]; ready?: boolean; uidNot?: string }, timeoutMs: number, everyMs = 250, signal?: AbortSignal): Promise<Pod> {
  const deadline = Date.now() + timeoutMs;
  let last: Pod | null = null;
  for (;;) {
    // A stop request (cancel, reject) ends the wait between two looks, not at its bound.
    if (signal?.aborted) throw new KubeError('error', `stopped while waiting for pod ${namespace}/${name}${last ? ` (phase ${last.status?.phase ?? 'unknown'})` : ''}`);
    last = await getPod(k, namespace, name);
    const fresh = last && (!until.uidNot || last.metadata?.uid !== until.uidNot);
    if (fresh && (!until.phases || until.phases.includes(last!.status?.phase ?? '')) && (!until.ready || isReady(last!))) return last!;
    if (Date.now() >= deadline) {
      const where = last ? `phase ${last.status?.phase ?? 'unknown'}${until.ready ? (isReady(last) ? ', Ready' : ', not Ready') : ''}` : 'no such pod';
      throw new KubeError('timeout', `pod ${namespace}/${name} not ${until.phases?.join(' or ') ?? ''}${until.ready ? ' Ready' : ''} within ${Math.round(timeoutMs / 1000)} s (${where})`);
    }
    await pause(everyMs, signal);
  }
}

export async function getPvc(k: KubeCluster, namespace: string, name: string): Promise<V1PersistentVolumeClaim | null> {
  try {
    return await k.call((o) => k.core.readNamespacedPersistentVolumeClaim({ name, namespace }, o));
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return null;
    throw err;
  }
}
