import { importPathProblem, importSourceOf } from '../src/backup/openshift-names.js';
import { UsageError } from '../src/errors.js';
import type { Command } from './types.js';
import { atMost, resolveCluster } from './args.js';

const usage = '/etcd backup [cluster] [import <member> <directory | snapshot_<ts>.db path>]';
const importUsage = '/etcd backup [cluster] import <member> <directory | snapshot_<ts>.db path>';

/** `[cluster]`, or `[cluster] import <member> <path>` (the action word first when the default cluster is meant, as for csr and drift). */
function parse(args: string[]): { cluster?: string; import?: string[] } {
  const at = args[0] === 'import' ? 0 : args[1] === 'import' ? 1 : -1;
  if (at < 0) {
    atMost(args, 1, usage);
    return { cluster: args[0] };
  }
  return { cluster: at === 1 ? args[0] : undefined, import: args.slice(at + 1) };
}

export const backup: Command = {
  name: 'backup',
  usage,
  summary:
    "a verified snapshot now, with the etcd manifest and pki of its host, into the backup store; `import <member> <path>` reads a backup OpenShift's cluster-backup.sh wrote on that master (snapshot_<ts>.db and static_kuberesources_<ts>.tar.gz) into the store instead",
  role: 'operate',
  run(args, ctx) {
    const p = parse(args);
    const cluster = resolveCluster(ctx.inventory, p.cluster, p.import ? importUsage : usage);
    if (!p.import) return { kind: 'job', job: { name: 'backup', data: { cluster: cluster.name } }, ack: `Taking a backup of *${cluster.name}*…` };

    // Usage errors are cut at 200 characters when shown: each says what is missing and an example within that.
    const [memberRef, path, extra] = p.import;
    const names = cluster.members.map((m) => m.name).join(', ');
    if (memberRef === undefined) throw new UsageError(`name the member whose host holds the backup (${names}), then its path there, e.g. /home/core/assets/backup`, importUsage);
    const member = cluster.members.find((m) => m.name === memberRef.toLowerCase() || m.host === memberRef);
    if (!member) throw new UsageError(`"${memberRef.slice(0, 60)}" is not a member of ${cluster.name}; its members: ${names}`, importUsage);
    if (path === undefined) throw new UsageError(`name the directory cluster-backup.sh wrote into on ${member.name} (e.g. /home/core/assets/backup), or its snapshot_<ts>.db`, importUsage);
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra.slice(0, 60)}" (a path with blanks cannot be typed here)`, importUsage);
    const problem = importPathProblem(path);
    if (problem) throw new UsageError(problem, importUsage);
    const source = importSourceOf(path);
    if ('combined' in source) {
      throw new UsageError(`${source.combined} is OpenShift 4.3.0/4.3.1's single-file backup: unpack it (tar xzf) into a directory on ${member.name} and import that directory`, importUsage);
    }
    return {
      kind: 'job',
      job: { name: 'import-backup', data: { cluster: cluster.name, member: member.name, path } },
      ack: `Importing the OpenShift backup at \`${path}\` on *${member.name}* into the store of *${cluster.name}* (the host is only read)…`,
    };
  },
};

const listUsage = '/etcd backups [cluster]';

export const backups: Command = {
  name: 'backups',
  usage: listUsage,
  summary: 'the backups in the store, newest first, with revision and key count (imported ones say from where)',
  role: 'read',
  run(args, ctx) {
    atMost(args, 1, listUsage);
    const cluster = resolveCluster(ctx.inventory, args[0], listUsage);
    return { kind: 'job', job: { name: 'list-backups', data: { cluster: cluster.name } }, ack: `Listing the backups of *${cluster.name}*…` };
  },
};
