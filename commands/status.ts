import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd status [cluster]';

export const status: Command = {
  name: 'status',
  usage,
  summary: 'the live state of every member: reachable, leader, raft term and index, DB size, alarms, and a verdict',
  role: 'read',
  run(args, ctx) {
    atMost(args, 1, usage);
    const cluster = resolveCluster(ctx.inventory, args[0], usage);
    return {
      kind: 'job',
      job: { name: 'status', data: { cluster: cluster.name } },
      ack: `Checking every member of *${cluster.name}*…`,
    };
  },
};
