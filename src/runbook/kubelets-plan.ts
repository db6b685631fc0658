import { nodesOf, type ClusterConfig, type Inventory } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { kubeletCsrsStep } from '../steps/kubelet-csrs.js';
import { kubeletRebootstrapStep } from '../steps/kubelet-rebootstrap.js';
import { newRun } from './new-run.js';
import type { PlanOutcome } from './replace-plan.js';
import type { ObservedState, StepSpec } from './types.js';

export interface KubeletsRenewRequest {
  runId: string;
  /** The nodes named, as typed; none: every node of the inventory (masters and the other nodes). */
  nodes: string[];
  requestedBy: string;
  channelId: string;
}

/** Why these names cannot be renewed on this cluster (null: they can), with what to type instead. */
export function unknownNodes(cluster: ClusterConfig, names: string[]): string | null {
  const known = nodesOf(cluster).map((n) => n.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length === 0) return null;
  const which = unknown.map((n) => `"${n}"`).join(', ');
  return `${unknown.length === 1 ? 'no node' : 'no nodes'} ${which} in ${cluster.name}'s inventory (its nodes: ${known.join(', ')}). Type \`/etcd kubelets renew ${cluster.name} <node…>\` with some of those, or none for all of them; a node not listed there needs its SSH access in the inventory (the cluster's nodes) first.`;
}

/**
 * The certificate section of the OpenShift disaster-recovery procedure as data
 * (recover the kubelet on every master, then on the workers, then approve the
 * node-bootstrapper CSRs): for each node, masters first, one destructive step
 * that restarts its kubelet without its client certificate and kubeconfig
 * (moved aside, never deleted); then one destructive step that approves the
 * waves of CSRs they file, through the CSR policy, until every node is Ready.
 * Pure; refuses a cluster without a kubeconfig and a node the inventory lacks.
 */
export function planKubeletsRenew(inventory: Inventory, cluster: ClusterConfig, state: ObservedState, req: KubeletsRenewRequest, now: Date): PlanOutcome {
  if (!cluster.kubeconfig) {
    return { ok: false, reason: `${cluster.name} has no kubeconfig in the inventory: the bot could not approve the CSRs the kubelets file once restarted, so it restarts none. Set clusters[].kubeconfig, then ask again.` };
  }
  const unknown = unknownNodes(cluster, req.nodes);
  if (unknown) return { ok: false, reason: unknown };
  const wanted = new Set(req.nodes);
  // Masters first, as the procedure does: the workers' kubelets reach the API through them.
  const hosts = nodesOf(cluster).filter((n) => wanted.size === 0 || wanted.has(n.name));
  const platform = platformOf(cluster);
  const names = hosts.map((h) => h.name);
  const steps: StepSpec[] = [
    ...hosts.map((h) => kubeletRebootstrapStep.spec({ cluster, place: platform.kubelet(h, req.runId) })),
    kubeletCsrsStep.spec({ cluster, nodes: names }),
  ];
  const masters = hosts.filter((h) => cluster.members.some((m) => m.name === h.name)).map((h) => h.name);
  const workers = names.filter((n) => !masters.includes(n));
  const rationale = `Renewing the kubelet client certificates of ${[masters.length ? `master${masters.length === 1 ? '' : 's'} ${masters.join(', ')}` : '', workers.length ? `node${workers.length === 1 ? '' : 's'} ${workers.join(', ')}` : ''].filter(Boolean).join(' and ')}: each kubelet is stopped, its client certificate and kubeconfig moved aside (kept, named for this run), and started again so it bootstraps; then the client CSRs and, once those are issued, the serving CSRs they file are approved in waves, each checked against the CSR policy, until every node is Ready. Running pods are not stopped by a kubelet restart; the Nodes show NotReady meanwhile.`;
  const run = newRun(
    inventory,
    { runId: req.runId, runbook: 'kubelets-renew', title: `Renew the kubelet certificates of ${names.join(', ')} in ${cluster.name}`, rationale, cluster: cluster.name, target: names.join(','), steps, plannedState: state, requestedBy: req.requestedBy, channelId: req.channelId },
    now,
  );
  return { ok: true, run };
}
