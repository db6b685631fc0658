import type { Role } from '../src/config/schema.js';
import { KUBE_NAME } from '../src/csr/review.js';
import { UsageError } from '../src/errors.js';
import type { Command } from './types.js';
import { resolveCluster } from './args.js';

const usage = '/etcd csr [cluster] [approve|deny <csr-name…>]';
const MAX_NAMES = 50;

/** Splits `[cluster] [approve|deny <name…>]`; the action word may come first when the default cluster is meant. */
function parse(args: string[]): { cluster?: string; decision?: 'approve' | 'deny'; names: string[] } {
  const at = args.findIndex((a) => a === 'approve' || a === 'deny');
  if (at < 0) {
    if (args.length > 1) throw new UsageError(`unexpected argument "${args[1]}" (to decide, write approve or deny before the CSR names)`, usage);
    return { cluster: args[0], names: [] };
  }
  if (at > 1) throw new UsageError(`unexpected argument "${args[1]}"`, usage);
  return { cluster: at === 1 ? args[0] : undefined, decision: args[at] as 'approve' | 'deny', names: args.slice(at + 1) };
}

export const csr: Command = {
  name: 'csr',
  usage,
  summary:
    'the pending certificate signing requests with who asked, the decoded request and a policy verdict; approve or deny each (approve role), or all that pass policy at once. Typed: `/etcd csr approve <name…>`',
  role: 'read',
  // Looking needs read; deciding needs approve, checked before anything is queued.
  roleFor(args): Role {
    return parse(args).decision ? 'approve' : 'read';
  },
  run(args, ctx) {
    const p = parse(args);
    const cluster = resolveCluster(ctx.inventory, p.cluster, usage);
    if (!p.decision) {
      return { kind: 'job', job: { name: 'csr', data: { cluster: cluster.name } }, ack: `Listing the pending CSRs of *${cluster.name}*…` };
    }
    if (p.names.length === 0) throw new UsageError(`name the CSR(s) to ${p.decision} (\`/etcd csr\` lists them)`, usage);
    if (p.names.length > MAX_NAMES) throw new UsageError(`at most ${MAX_NAMES} CSRs at once; "approve all that pass" on \`/etcd csr\` takes more`, usage);
    const bad = p.names.find((n) => !KUBE_NAME.test(n));
    if (bad !== undefined) throw new UsageError(`"${bad.slice(0, 80)}" is not a CSR name (lowercase letters, digits, "-" and ".")`, usage);
    const names = [...new Set(p.names)];
    return {
      kind: 'job',
      job: { name: 'csr-decide', data: { decision: p.decision, cluster: cluster.name, names } },
      ack: `${p.decision === 'approve' ? 'Approving' : 'Denying'} ${names.length === 1 ? `CSR ${names[0]}` : `${names.length} CSRs`} in *${cluster.name}*…`,
    };
  },
};
