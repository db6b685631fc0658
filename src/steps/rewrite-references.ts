import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { rewriteReferences } from '../worker/steps/references-steps.js';
import { CHECKED_IO, LOCKED, uniq } from './host-tools.js';
import { sshText } from './plan-text.js';
import type { Step, StepDefinition } from './types.js';

const file = z.object({ path: z.string(), what: z.string(), from: z.array(z.string()), to: z.array(z.string()) });
const params = z.object({ asideDir: z.string(), files: z.array(file) });
export type RewriteReferencesStep = Step<'rewrite-references', z.infer<typeof params>> & { host: string };

/**
 * The files on one master that name etcd's members (platform references) set to
 * the current members, the originals kept aside, and what reads them restarted.
 */
export const rewriteReferencesStep = {
  kind: 'rewrite-references',
  params,
  spec(i: { cluster: ClusterConfig; member: string; asideDir: string; files: z.infer<typeof file>[] }): RewriteReferencesStep {
    const m = i.cluster.members.find((x) => x.name === i.member)!;
    const refs = platformOf(i.cluster).references(m);
    const applies = [...new Set(i.files.map((f) => refs.find((r) => r.path === f.path)?.apply?.text).filter((t): t is string => !!t))];
    return {
      kind: 'rewrite-references',
      title: `Update the files on ${i.member} that name etcd's members${applies.length ? ' and restart what reads them' : ''}`,
      destructive: true,
      host: i.member,
      operation: `on ${sshText(i.cluster, i.member)}: ${i.files.map((f) => `${f.path}: ${f.what} ${f.from.join(',') || '(none)'} → ${f.to.join(',')}`).join('; ')} (each original kept in ${i.asideDir}; a file changed since this plan is refused)${applies.length ? `; then ${applies.join('; ')}` : ''}`,
      params: { asideDir: i.asideDir, files: i.files },
    };
  },
  execute: (ctx, step) => rewriteReferences(ctx.host, step, ctx.run.runId, ctx.leaseLost),
  // master-restart is used where the host has it, else systemctl (the platform's tools).
  hosts: { tools: uniq([...LOCKED, ...CHECKED_IO, 'cp']), members: (step) => [{ member: step.host }] },
} satisfies StepDefinition<'rewrite-references'>;
