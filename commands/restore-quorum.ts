import { UsageError } from '../src/errors.js';
import { BACKUP_ID } from '../src/backup/store.js';
import { NAME_PATTERN } from '../src/config/schema.js';
import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd restore-quorum [cluster] [--from <member> | --snapshot <backup-id>]';

export const restoreQuorum: Command = {
  name: 'restore-quorum',
  usage,
  summary: 'after the majority is lost: fence the dead members, restart the best survivor alone (or restore a backup onto it), grow back',
  role: 'destroy',
  run(args, ctx) {
    const positional: string[] = [];
    let from: string | undefined;
    let snapshot: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--from' || a === '--snapshot') {
        const v = args[++i];
        if (!v) throw new UsageError(`${a} needs a value`, usage);
        if (a === '--from') {
          if (!NAME_PATTERN.test(v)) throw new UsageError(`"${v}" is not a member name`, usage);
          from = v;
        } else {
          if (!BACKUP_ID.test(v)) throw new UsageError(`"${v}" is not a backup ID (like 2026-11-23_031500; \`/etcd backups\` lists them)`, usage);
          snapshot = v;
        }
      } else if (a.startsWith('-')) throw new UsageError(`unknown option "${a}"`, usage);
      else positional.push(a);
    }
    atMost(positional, 1, usage);
    const cluster = resolveCluster(ctx.inventory, positional[0], usage);
    return {
      kind: 'job',
      job: { name: 'plan-restore-quorum', data: { cluster: cluster.name, from, snapshot } },
      ack: `Looking at every member of *${cluster.name}* and its host before planning the quorum restore…`,
    };
  },
};
