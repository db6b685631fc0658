import type { Role } from '../src/config/schema.js';
import { UsageError } from '../src/errors.js';
import type { Command } from './types.js';
import { resolveCluster } from './args.js';

const usage = '/etcd drift [cluster] [fix]';

/** `[cluster] [fix]`, in either order. */
function parse(args: string[]): { cluster?: string; fix: boolean } {
  const fix = args.includes('fix');
  const rest = args.filter((a) => a !== 'fix');
  if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}"`, usage);
  if (args.filter((a) => a === 'fix').length > 1) throw new UsageError('"fix" once is enough', usage);
  return { cluster: rest[0], fix };
}

export const drift: Command = {
  name: 'drift',
  usage,
  summary:
    'files on the masters that still name a removed member or miss a new one (OpenShift 3: master-config.yaml, etcd.conf, flanneld), compared with the member list; `fix` plans their update (and the API server restart), one approved step per master',
  role: 'read',
  // Looking reads; fixing plans destructive steps (the API server restarts).
  roleFor(args): Role {
    return parse(args).fix ? 'destroy' : 'read';
  },
  run(args, ctx) {
    const p = parse(args);
    const cluster = resolveCluster(ctx.inventory, p.cluster, usage);
    if (p.fix) return { kind: 'job', job: { name: 'plan-drift-fix', data: { cluster: cluster.name } }, ack: `Planning the update of the files that name etcd's members on *${cluster.name}*'s masters…` };
    return { kind: 'job', job: { name: 'drift', data: { cluster: cluster.name } }, ack: `Reading the files that name etcd's members on *${cluster.name}*'s masters…` };
  },
};
