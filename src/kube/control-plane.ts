import type { ClusterConfig } from '../config/schema.js';
import type { KubeCluster } from './client.js';
import { listPendingCsrs } from './csrs.js';
import { KubeError } from './errors.js';
import { getNode, listControlPlaneNodes, summarizeNode, type KubeNode, type NodeSummary } from './nodes.js';
import { apiserverUrl, readyz, type ReadyzResult } from './readyz.js';

export interface NodeAddress {
  type: string;
  address: string;
}

/** One master the inventory names, as Kubernetes sees it. */
export interface MasterView {
  /** The inventory's member name and host address. */
  name: string;
  host: string;
  /** Its Node, matched by name, else by an address equal to the inventory host; null when none is registered. */
  node: NodeSummary | null;
  /** Every address of that Node (InternalIP, ExternalIP, Hostname, InternalDNS, …), for the peer URL check. */
  addresses: NodeAddress[];
  /** kube-apiserver's /readyz on this master, asked directly (not through the load balancer). */
  readyz: ReadyzResult;
}

/** The Kubernetes view of a cluster: its masters' Nodes and API servers, and the CSRs waiting for a decision. */
export interface ControlPlaneView {
  cluster: string;
  /** The kubeconfig's server (often a load balancer in front of the masters). */
  server: string;
  at: Date;
  tookMs: number;
  /** Why the nodes could not be listed through the kubeconfig's server; null when they were. */
  nodesError: KubeError | null;
  masters: MasterView[];
  /** Control-plane nodes the inventory does not name (a master added by hand, or one renamed). */
  otherNodes: NodeSummary[];
  /** CSRs waiting for approval; null when they could not be listed (csrsError says why). */
  pendingCsrs: number | null;
  csrsError: KubeError | null;
}

const addressesOf = (n: KubeNode): NodeAddress[] => (n.status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address }));

const asKubeError = (err: unknown): KubeError => (err instanceof KubeError ? err : new KubeError('error', (err as Error).message));

/**
 * Asks, all at once and each bounded by the call timeout: the control-plane
 * nodes, the pending CSRs (both through the kubeconfig's server) and
 * kube-apiserver /readyz on every master the inventory names (each directly,
 * on its host at port 6443). An API server that is down costs its reason, not
 * the rest: the readyz of each master is still asked when the list fails.
 */
export async function viewControlPlane(k: KubeCluster, cluster: ClusterConfig, now: () => Date = () => new Date()): Promise<ControlPlaneView> {
  const at = now();
  const [nodes, csrs, readies] = await Promise.all([
    listControlPlaneNodes(k).then(
      (items) => ({ items, error: null }),
      (err: unknown) => ({ items: [] as KubeNode[], error: asKubeError(err) }),
    ),
    listPendingCsrs(k).then(
      (items) => ({ count: items.length as number | null, error: null }),
      (err: unknown) => ({ count: null, error: asKubeError(err) }),
    ),
    Promise.all(cluster.members.map((m) => readyz(k, apiserverUrl(m.host)))),
  ]);

  const byName = new Map(nodes.items.map((n) => [n.metadata?.name ?? '', n]));
  const matched = new Set<KubeNode>();
  const masters: MasterView[] = await Promise.all(
    cluster.members.map(async (m, i) => {
      let node = byName.get(m.name) ?? nodes.items.find((n) => addressesOf(n).some((a) => a.address === m.host)) ?? null;
      // A master whose Node lacks the control-plane label is still that master's Node.
      if (!node && !nodes.error) node = await getNode(k, m.name).catch(() => null);
      if (node) matched.add(node);
      return { name: m.name, host: m.host, node: node && summarizeNode(node), addresses: node ? addressesOf(node) : [], readyz: readies[i]! };
    }),
  );
  return {
    cluster: cluster.name,
    server: k.server,
    at,
    tookMs: now().getTime() - at.getTime(),
    nodesError: nodes.error,
    masters,
    otherNodes: nodes.items.filter((n) => !matched.has(n)).map(summarizeNode),
    pendingCsrs: csrs.count,
    csrsError: csrs.error,
  };
}

/** "2026-11-24T10:01:02Z, 2m 10s ago" */
export function sinceText(d: Date | undefined, now: Date): string {
  if (!d) return 'an unknown time';
  const s = Math.max(0, Math.round((now.getTime() - d.getTime()) / 1000));
  const ago = s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : s < 86_400 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
  return `${d.toISOString().replace(/\.\d+Z$/, 'Z')}, ${ago} ago`;
}

/** Why a readyz answer is not ready, in a few words: the error's reason, or the status and the failing checks. */
export function readyzProblem(r: ReadyzResult): string | null {
  if (r.ok) return null;
  if ('error' in r) return r.error.reason;
  return `HTTP ${r.status}${r.failing.length ? ` (${r.failing.join('; ')})` : ''}`;
}

/** "NotReady since …: reason: message" (Unknown when the kubelet stopped posting; never reported when it has no condition). */
export function nodeNotReady(n: NodeSummary, now: Date): string | null {
  if (n.ready === true) return null;
  const state = n.ready === null ? 'has never reported Ready' : `NotReady since ${sinceText(n.readySince, now)}`;
  const why = [n.readyReason, n.readyMessage].filter(Boolean).join(': ');
  return `node ${n.name} ${state}${why ? ` (${why})` : ''}`;
}

/**
 * What keeps Kubernetes from being ready, one line each: a master whose
 * kube-apiserver /readyz fails (and why), a control-plane node NotReady (since
 * when) or missing, the API not answering, and the pending CSRs when anything
 * else is missing (they are often why: a node waiting for its certificates).
 * Empty when every master's /readyz is ok and every master's Node is Ready.
 */
export function kubeShortfall(v: ControlPlaneView, now: Date): string[] {
  const out: string[] = [];
  for (const m of v.masters) {
    const p = readyzProblem(m.readyz);
    if (p) out.push(`kube-apiserver on ${m.name} (${m.readyz.url}) not ready: ${p}`);
  }
  if (v.nodesError) {
    out.push(`the nodes could not be listed through ${v.server}: ${v.nodesError.reason}`);
  } else {
    for (const m of v.masters) {
      if (!m.node) out.push(`master ${m.name} has no Node object (its kubelet has not registered)`);
      else {
        const p = nodeNotReady(m.node, now);
        if (p) out.push(p);
      }
    }
  }
  if (out.length > 0 && v.pendingCsrs) out.push(`${v.pendingCsrs} pending CSR${v.pendingCsrs === 1 ? '' : 's'}`);
  return out;
}
