import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd backup [cluster]';

export const backup: Command = {
  name: 'backup',
  usage,
  summary: 'a verified snapshot now, with the etcd manifest and pki of its host, into the backup store',
  role: 'operate',
  run(args, ctx) {
    atMost(args, 1, usage);
    const cluster = resolveCluster(ctx.inventory, args[0], usage);
    return { kind: 'job', job: { name: 'backup', data: { cluster: cluster.name } }, ack: `Taking a backup of *${cluster.name}*…` };
  },
};

const listUsage = '/etcd backups [cluster]';

export const backups: Command = {
  name: 'backups',
  usage: listUsage,
  summary: 'the backups in the store, newest first, with revision and key count',
  role: 'read',
  run(args, ctx) {
    atMost(args, 1, listUsage);
    const cluster = resolveCluster(ctx.inventory, args[0], listUsage);
    return { kind: 'job', job: { name: 'list-backups', data: { cluster: cluster.name } }, ack: `Listing the backups of *${cluster.name}*…` };
  },
};
