import { z } from 'zod';
import { defragMember } from '../worker/steps/defrag-steps.js';
import type { Step, StepDefinition } from './types.js';

// before: the members this run defragments earlier (a leader moved away goes to one of them); after: later.
// dbSize: the member's database file when planned (a file that only a defragment makes smaller).
const params = z.object({ name: z.string(), idHex: z.string(), url: z.string(), dbSize: z.number(), role: z.enum(['follower', 'leader']), before: z.array(z.string()), after: z.array(z.string()), timeoutSeconds: z.number() });
export type DefragMemberStep = Step<'defrag-member', z.infer<typeof params>>;

/**
 * One member's database rewritten without its free pages (etcdctl defrag --endpoints=<that member>).
 * It blocks that member's reads and writes while it runs: one member at a time, followers first.
 */
export const defragMemberStep = {
  kind: 'defrag-member',
  params,
  spec: (i: { name: string; idHex: string; url: string; dbSize: number; role: 'follower' | 'leader'; before: string[]; after: string[]; timeoutSeconds: number }): DefragMemberStep => ({
    kind: 'defrag-member',
    title: `Defragment ${i.name} (${i.role === 'leader' ? 'the leader, last' : 'a follower'})`,
    destructive: false,
    operation:
      `first every member answering with one leader; then maintenance.defragment() on ${i.name} (${i.url}) alone, deadline ${i.timeoutSeconds} s, as etcdctl defrag --endpoints=${i.url}; ` +
      `then ${i.name} answering and the cluster healthy again before the next step. Resumed after its worker stopped, skipped if ${i.name}'s database is already smaller than the ${i.dbSize} bytes it was when planned (only a defragment shrinks it).` +
      (i.after.length ? ` If ${i.name} leads by then, leadership moves to ${i.before.length ? i.before.join(' or ') : 'a follower'} first, so the leader goes last.` : ''),
    params: { name: i.name, idHex: i.idHex, url: i.url, dbSize: i.dbSize, role: i.role, before: i.before, after: i.after, timeoutSeconds: i.timeoutSeconds },
  }),
  // Its try number: a resumed step looks whether the first try already defragmented the member.
  execute: (ctx, step) => defragMember({ ...ctx.etcd, stop: ctx.stop, leaseLost: ctx.leaseLost }, step, ctx.run.records[ctx.index]?.attempts ?? 1),
} satisfies StepDefinition<'defrag-member'>;
