import { ApiError, resourceType, type KubeObject, type ObjectStore } from './store.js';

const PODS = resourceType('pods', '')!;
const PDBS = resourceType('poddisruptionbudgets', 'policy')!;

/** matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) of a LabelSelector; an empty selector matches everything. */
export function selects(selector: any, labels: Record<string, string> = {}): boolean {
  if (!selector) return false; // policy/v1: a PDB without a selector selects no pod
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const inValues = has && (e.values ?? []).includes(labels[e.key]);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

export const podReady = (p: KubeObject): boolean => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
const terminal = (p: KubeObject) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

/** An int-or-percent of `of`, rounded up as the disruption controller rounds minAvailable (and maxUnavailable). */
function scaled(v: number | string, of: number): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) throw new ApiError(422, 'Invalid', `invalid value for IntOrString: invalid value "${v}": must be an integer or percentage (e.g '5%')`);
  return Math.ceil((Number(m[1]) * of) / 100);
}

/**
 * A PDB's status as the disruption controller computes it from the pods it selects:
 * expected pods (the selected, non-terminal ones: the stand-in's pods all have a
 * controller that wants them), healthy (Ready) ones, and how many may go now.
 */
export function budgetStatus(pdb: KubeObject, pods: KubeObject[]): Record<string, unknown> {
  const selected = pods.filter((p) => p.metadata.namespace === pdb.metadata.namespace && !terminal(p) && selects(pdb.spec?.selector, p.metadata.labels));
  const expected = selected.length;
  const healthy = selected.filter(podReady).length;
  const desired = pdb.spec?.minAvailable !== undefined ? scaled(pdb.spec.minAvailable, expected) : Math.max(0, expected - scaled(pdb.spec?.maxUnavailable ?? 0, expected));
  const allowed = Math.max(0, healthy - desired);
  return {
    observedGeneration: pdb.metadata.generation ?? 1,
    disruptionsAllowed: allowed,
    currentHealthy: healthy,
    desiredHealthy: desired,
    expectedPods: expected,
    conditions: [
      {
        type: 'DisruptionAllowed',
        status: allowed > 0 ? 'True' : 'False',
        reason: allowed > 0 ? 'SufficientPods' : 'InsufficientPods',
        message: '',
        observedGeneration: pdb.metadata.generation ?? 1,
        lastTransitionTime: pdb.metadata.creationTimestamp,
      },
    ],
  };
}

/** The disruption controller's pass over one namespace's PDBs (or all): each gets its status written when it changed. */
export function refreshBudgets(store: ObjectStore, namespace?: string): void {
  const pods = store.list(PODS, namespace).items;
  for (const pdb of store.list(PDBS, namespace).items) {
    const status = budgetStatus(pdb, pods);
    const keepTime = (pdb.status?.conditions ?? []).find((c: any) => c.type === 'DisruptionAllowed' && c.status === (status.conditions as any[])[0].status);
    if (keepTime) (status.conditions as any[])[0].lastTransitionTime = keepTime.lastTransitionTime;
    else (status.conditions as any[])[0].lastTransitionTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (JSON.stringify(status) !== JSON.stringify(pdb.status)) store.update(PDBS, pdb.metadata.name, pdb.metadata.namespace, { ...pdb, status });
  }
}

/**
 * The pods/eviction subresource of policy/v1 (pkg/registry/core/pod/storage/eviction.go):
 * a pod that is terminal or Pending goes at once; otherwise the one PDB that selects it
 * must allow a disruption, else 429 with the budget's reason. An unhealthy pod may go
 * while the budget is met (unhealthyPodEvictionPolicy IfHealthyBudget, the default).
 * The allowed eviction deletes the pod and takes one disruption from the budget.
 */
export function evict(store: ObjectStore, namespace: string, name: string, body: any): Record<string, unknown> {
  const pod = store.get(PODS, name, namespace);
  if (body?.metadata?.name && body.metadata.name !== name) throw new ApiError(400, 'BadRequest', `name in URL does not match name in Eviction object`);
  const dryRun = Array.isArray(body?.deleteOptions?.dryRun) && body.deleteOptions.dryRun.includes('All');
  const done = () => {
    if (!dryRun) store.delete(PODS, name, namespace);
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
  };
  if (terminal(pod) || pod.status?.phase === 'Pending' || !pod.status?.phase) return done();
  const budgets = store.list(PDBS, namespace).items.filter((b) => selects(b.spec?.selector, pod.metadata.labels));
  if (budgets.length === 0) return done();
  if (budgets.length > 1) throw new ApiError(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.');
  const pdb = budgets[0]!;
  const status = budgetStatus(pdb, store.list(PODS, namespace).items);
  const healthy = status.currentHealthy as number;
  const desired = status.desiredHealthy as number;
  if (!podReady(pod) && healthy >= desired && (pdb.spec?.unhealthyPodEvictionPolicy ?? 'IfHealthyBudget') === 'IfHealthyBudget') return done();
  if (!podReady(pod) && pdb.spec?.unhealthyPodEvictionPolicy === 'AlwaysAllow') return done();
  if ((status.disruptionsAllowed as number) <= 0) {
    throw new ApiError(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget.", {
      causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdb.metadata.name} needs ${desired} healthy pods and has ${healthy} currently` }],
    });
  }
  const result = done();
  if (!dryRun) refreshBudgets(store, namespace);
  return result;
}
