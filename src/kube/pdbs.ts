import type { V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { KubeCluster } from './client.js';
import { KubeError } from './errors.js';

export type Pdb = V1PodDisruptionBudget;

/** One PDB, or null when there is none (already deleted). */
export async function getPdb(k: KubeCluster, namespace: string, name: string): Promise<Pdb | null> {
  try {
    return await k.call((o) => k.policy.readNamespacedPodDisruptionBudget({ name, namespace }, o));
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return null;
    throw err;
  }
}

/**
 * Deletes a PDB; "already-gone" when there was none to delete (a step run again).
 * With `uid`, only that object: one made again since (by the run's own last step,
 * or by someone) is "another" and left alone, as the API server's precondition says.
 */
export async function deletePdb(k: KubeCluster, namespace: string, name: string, uid?: string): Promise<'deleted' | 'already-gone' | 'another'> {
  try {
    const body = uid ? { preconditions: { uid } } : undefined;
    await k.call((o) => k.policy.deleteNamespacedPodDisruptionBudget({ name, namespace, body }, o));
    return 'deleted';
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return 'already-gone';
    if (uid && err instanceof KubeError && err.status === 409) return 'another';
    throw err;
  }
}

/**
 * A saved PDB as plain JSON that can be created again: what `kubectl get -o yaml`
 * shows, less what the server sets (uid, resourceVersion, timestamps, generation,
 * managed fields, status). The server refuses a create that carries a resourceVersion.
 */
export function pdbToRecreate(p: Pdb): Record<string, any> {
  const plain = JSON.parse(JSON.stringify(p)) as Record<string, any>;
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, generation: _g, managedFields: _m, deletionTimestamp: _d, selfLink: _s, ...metadata } = plain.metadata ?? {};
  return { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata, spec: plain.spec };
}

/** Creates a PDB from its saved form; "already-there" when one of that name exists (put back by an earlier run or by hand). */
export async function createPdb(k: KubeCluster, saved: Record<string, any>): Promise<'created' | 'already-there'> {
  const namespace = String(saved.metadata?.namespace ?? '');
  try {
    await k.call((o) => k.policy.createNamespacedPodDisruptionBudget({ namespace, body: saved as Pdb }, o));
    return 'created';
  } catch (err) {
    if (err instanceof KubeError && err.status === 409) return 'already-there';
    throw err;
  }
}
