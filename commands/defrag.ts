import type { Command } from './types.js';
import { atMost, resolveCluster, splitFlags } from './args.js';

const usage = '/etcd defrag [cluster]';

export const defrag: Command = {
  name: 'defrag',
  usage,
  summary: 'NOSPACE or a database near its quota: compact (needs a second person to approve), defragment each member alone, leader last, disarm the alarm, check writes',
  role: 'destroy',
  run(args, ctx) {
    const { positional } = splitFlags(args, [], usage);
    atMost(positional, 1, usage);
    const cluster = resolveCluster(ctx.inventory, positional[0], usage);
    return {
      kind: 'job',
      job: { name: 'plan-defrag', data: { cluster: cluster.name } },
      ack: `Looking at every member of *${cluster.name}* (database sizes, alarms, leader) before planning the compaction and defragments…`,
    };
  },
};
