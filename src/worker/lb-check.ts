import type { ClusterConfig } from '../config/schema.js';
import { hostPortOf } from '../host-port.js';
import type { KubeCluster } from '../kube/client.js';
import { probeEndpoint, type EndpointProbe } from '../kube/lb-probe.js';
import { APISERVER_PORT } from '../kube/ports.js';
import { judgeLoadBalancer, loadBalancerCaveat, type LbCheck } from '../status/lb-drift.js';

/** Fresh connections per look through the load balancer: enough for a round-robin pool of a handful of masters to show each. */
export const LB_PROBES = 12;
/**
 * How long a replaced master that is not reached through the load balancer is looked for again: a load balancer
 * marks a backend up only after a few health checks pass (haproxy: `rise 2`, `inter 2s`).
 */
export const LB_SETTLE_MS = 15_000;
const LB_LOOK_EVERY_MS = 2000;

export interface LbResult {
  summary: string;
  lines: string[];
  caveat?: string;
}

function parseBackend(b: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(b)!;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/**
 * After a replace, what the worker can honestly see of the API load balancer in
 * front of the masters: it cannot read an outside load balancer's config (an
 * F5, a cloud LB, haproxy on another machine), so it probes. Fresh TLS
 * connections go through it (the kubeconfig's server, or
 * clusters[].apiLoadBalancer.url), each backend named by its serving
 * certificate; where the inventory lists the pool (apiLoadBalancer.backends),
 * each entry is held against the masters' addresses and probed directly. A
 * replaced master not reached yet is looked for again for LB_SETTLE_MS (health
 * checks take a few seconds to let a backend in). Only reads; never fails.
 */
export async function lookAtLoadBalancer(
  k: KubeCluster,
  cluster: ClusterConfig,
  changed: string,
  opts: { probe?: (hp: { host: string; port: number }) => Promise<EndpointProbe>; settleMs?: number; everyMs?: number; signal?: AbortSignal } = {},
): Promise<LbResult> {
  const probe = opts.probe ?? ((hp) => probeEndpoint(k, hp));
  const url = cluster.apiLoadBalancer?.url ?? k.server;
  const at = hostPortOf(url);
  if (!at) throw new Error(`the API load balancer's URL ${url} is not a URL`);
  const lb = { host: at.host, port: at.port };
  const lbText = `${lb.host.includes(':') ? `[${lb.host}]` : lb.host}:${lb.port}`;
  const masters = cluster.members.map((m) => ({ name: m.name, host: m.host }));
  const own = masters.find((m) => m.host.toLowerCase() === lb.host.toLowerCase());
  if (own) {
    const text = `API load balancer not checked: ${url} is ${own.name}'s own API server, not a load balancer (set clusters[].apiLoadBalancer.url to the one in front of the masters to have it checked)`;
    return { summary: text, lines: [text] };
  }
  const pool = cluster.apiLoadBalancer?.backends
    ? await Promise.all(cluster.apiLoadBalancer.backends.map(async (backend) => ({ backend, probe: await probe(parseBackend(backend)) })))
    : undefined;
  const deadline = Date.now() + (opts.settleMs ?? LB_SETTLE_MS);
  let check: LbCheck;
  for (;;) {
    const through: EndpointProbe[] = [];
    for (let i = 0; i < LB_PROBES; i++) through.push(await probe(lb));
    check = judgeLoadBalancer({ lb: lbText, apiPort: APISERVER_PORT, masters, changed, through, pool });
    // Looked at again only while the replaced master is what is missing: a stale pool entry or a stranger does not go away by waiting.
    const waitingFor = check.problems.length > 0 && check.problems.every((p) => p.startsWith(`${changed} (now at`) || /does not answer/.test(p));
    if (!waitingFor || Date.now() >= deadline || opts.signal?.aborted) break;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? LB_LOOK_EVERY_MS));
  }
  const caveat = loadBalancerCaveat(check);
  return {
    summary: caveat ? `API load balancer ${lbText}: ${check.problems.length} thing${check.problems.length === 1 ? '' : 's'} to change` : `API load balancer ${lbText} reaches ${changed}`,
    lines: [...check.ok, ...check.problems],
    caveat,
  };
}
