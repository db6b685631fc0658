import { NAME_PATTERN, nodesOf } from '../src/config/schema.js';
import { UsageError } from '../src/errors.js';
import type { Command } from './types.js';
import { resolveCluster } from './args.js';

const usage = '/etcd kubelets renew [cluster] [node…]';
const MAX_NODES = 50;

/**
 * `/etcd kubelets renew [cluster] [node…]`: the first word after `renew` is the
 * cluster when the inventory has a cluster of that name, else a node of the
 * default cluster. Node names are checked against the inventory here, so a
 * typo is answered at once with the names to type.
 */
export const kubelets: Command = {
  name: 'kubelets',
  usage,
  summary:
    "renew expired or lost kubelet client certificates: each node's kubelet (masters and the inventory's nodes; all when none is named) stopped, its client certificate and kubeconfig moved aside, started to bootstrap again; then its client and serving CSRs approved in waves through the CSR policy until every node is Ready. Destructive: a second person approves",
  role: 'destroy',
  run(args, ctx) {
    const [verb, ...rest] = args;
    if (verb === undefined) throw new UsageError('say what to do with the kubelets: `renew`', usage);
    if (verb.toLowerCase() !== 'renew') throw new UsageError(`"${verb.slice(0, 40)}" is not something the bot does with kubelets; it can \`renew\` their certificates`, usage);
    const bad = rest.find((a) => !NAME_PATTERN.test(a));
    if (bad !== undefined) throw new UsageError(`"${bad.slice(0, 80)}" is not a cluster or node name (lowercase letters, digits, "-" and "." only)`, usage);
    const named = rest[0] !== undefined && ctx.inventory.clusters.some((c) => c.name === rest[0]);
    const cluster = resolveCluster(ctx.inventory, named ? rest[0] : undefined, usage);
    const nodes = [...new Set(named ? rest.slice(1) : rest)];
    if (nodes.length > MAX_NODES) throw new UsageError(`at most ${MAX_NODES} nodes in one run`, usage);
    const known = nodesOf(cluster).map((n) => n.name);
    const missing = nodes.filter((n) => !known.includes(n));
    if (missing.length) {
      // Short (the answer keeps 200 characters of it): which names, the nodes to choose from, and the clusters when the first word may have meant one.
      const list = known.length > 8 ? `${known.slice(0, 8).join(', ')}, …` : known.join(', ');
      const clusters = !named && missing.includes(rest[0]!) ? `; clusters: ${ctx.inventory.clusters.map((c) => c.name).join(', ')}` : '';
      throw new UsageError(`no node ${missing.map((n) => `"${n}"`).join(', ')} in ${cluster.name} (its nodes: ${list}${clusters}): name some of those, or none for all`, usage);
    }
    const which = nodes.length ? nodes.join(', ') : `every node (${nodesOf(cluster).map((n) => n.name).join(', ')})`;
    return {
      kind: 'job',
      job: { name: 'plan-kubelets-renew', data: { cluster: cluster.name, nodes } },
      ack: `Planning the renewal of the kubelet certificates of ${which} in *${cluster.name}*…`,
    };
  },
};
