import { z } from 'zod';
import { compact } from '../worker/steps/defrag-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ revision: z.number(), via: z.string() });
export type CompactStep = Step<'compact', z.infer<typeof params>>;

/**
 * The keyspace's history before `revision` dropped (etcdctl compact): what frees the
 * pages a defragment then gives back. Destructive: older revisions cannot be read again.
 */
export const compactStep = {
  kind: 'compact',
  params,
  spec: (i: { revision: number; via: { name: string; url: string } }): CompactStep => ({
    kind: 'compact',
    title: `Compact the keyspace to revision ${i.revision}`,
    destructive: true,
    operation: `kv.compact({ revision: ${i.revision}, physical: true }) through ${i.via.name} (${i.via.url}), as etcdctl compact ${i.revision} --physical; skipped if already compacted to ${i.revision} or later. Every revision before ${i.revision} is gone afterwards (a watch or \`get --rev\` older than it fails)`,
    params: { revision: i.revision, via: i.via.name },
  }),
  execute: (ctx, step) => compact({ ...ctx.etcd, stop: ctx.stop, leaseLost: ctx.leaseLost }, step),
} satisfies StepDefinition<'compact'>;
