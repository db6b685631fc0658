import { UsageError } from '../src/errors.js';
import type { Command } from './types.js';
import { atMost, resolveCluster, splitFlags } from './args.js';

const usage = '/etcd replace <member> [cluster] [--force]';
// A member is named by its name, its hex ID as etcdctl prints it, or its host address.
const MEMBER_REF = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

export const replace: Command = {
  name: 'replace',
  usage,
  summary: 'replace a failed member: snapshot, remove, data dir aside, add as learner, start, promote; destructive steps need a second person to approve',
  role: 'destroy',
  run(args, ctx) {
    const { positional, flags } = splitFlags(args, ['--force'], usage);
    if (positional.length === 0) throw new UsageError('name the member to replace (by name, hex ID as etcdctl prints it, or host)', usage);
    atMost(positional, 2, usage);
    const member = positional[0]!.toLowerCase();
    if (!MEMBER_REF.test(member)) {
      throw new UsageError(`"${positional[0]}" is not a member name, hex ID or host (letters, digits, "-" and "." only)`, usage);
    }
    const cluster = resolveCluster(ctx.inventory, positional[1], usage);
    const force = flags.has('--force');
    return {
      kind: 'job',
      job: { name: 'plan-replace', data: { cluster: cluster.name, target: member, force } },
      ack: `Planning the replacement of *${member}* in *${cluster.name}*${force ? ' (forced)' : ''}: checking every member first…`,
    };
  },
};
