import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd nodes [cluster]';

export const nodes: Command = {
  name: 'nodes',
  usage,
  summary: "the Kubernetes control plane: each master's node (Ready since when, kubelet, InternalIPs), kube-apiserver /readyz on each master, pending CSRs, and each etcd member's peer URL against its node's addresses",
  role: 'read',
  run(args, ctx) {
    atMost(args, 1, usage);
    const cluster = resolveCluster(ctx.inventory, args[0], usage);
    return {
      kind: 'job',
      job: { name: 'nodes', data: { cluster: cluster.name } },
      ack: `Asking Kubernetes about the control plane of *${cluster.name}*…`,
    };
  },
};
