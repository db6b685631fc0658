import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd drift [cluster]';

export const drift: Command = {
  name: 'drift',
  usage,
  summary: 'files on the masters that still name a removed member or miss a new one (OpenShift 3: master-config.yaml, etcd.conf, flanneld), compared with the member list',
  role: 'read',
  run(args, ctx) {
    atMost(args, 1, usage);
    const cluster = resolveCluster(ctx.inventory, args[0], usage);
    return { kind: 'job', job: { name: 'drift', data: { cluster: cluster.name } }, ack: `Reading the files that name etcd's members on *${cluster.name}*'s masters…` };
  },
};
