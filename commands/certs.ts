import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd certs [cluster]';

export const certs: Command = {
  name: 'certs',
  usage,
  summary: 'the expiry of every certificate a recovery depends on (etcd client and peer, the bot\'s own, kube-apiserver, kubelet), worst first',
  role: 'read',
  run(args, ctx) {
    atMost(args, 1, usage);
    const cluster = resolveCluster(ctx.inventory, args[0], usage);
    return { kind: 'job', job: { name: 'certs', data: { cluster: cluster.name } }, ack: `Reading the certificates of *${cluster.name}*…` };
  },
};
