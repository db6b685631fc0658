import { UsageError } from '../src/errors.js';
import { BACKUP_ID } from '../src/backup/store.js';
import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd restore <backup-id> [cluster]';

export const restore: Command = {
  name: 'restore',
  usage,
  summary: 'the whole cluster back to a backup: kube-apiserver stopped, every member restored from the same snapshot, started again',
  role: 'destroy',
  run(args, ctx) {
    if (args.length === 0) throw new UsageError('name the backup to restore (`/etcd backups` lists them)', usage);
    atMost(args, 2, usage);
    if (!BACKUP_ID.test(args[0]!)) throw new UsageError(`"${args[0]}" is not a backup ID (like 2026-11-23_031500; \`/etcd backups\` lists them)`, usage);
    const cluster = resolveCluster(ctx.inventory, args[1], usage);
    return {
      kind: 'job',
      job: { name: 'plan-restore', data: { cluster: cluster.name, backupId: args[0]! } },
      ack: `Planning the restore of *${cluster.name}* to backup \`${args[0]}\`…`,
    };
  },
};
