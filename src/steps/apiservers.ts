import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { platformOf, type ApiserverPlace } from '../platform/index.js';
import { apiservers, undoApiserversStop } from '../worker/steps/quorum-steps.js';
import { LOCKED, uniq } from './host-tools.js';
import { sshText } from './plan-text.js';
import type { Step, StepDefinition } from './types.js';

/** One master's API servers as its platform names them (Platform.apiserverPlace): what to stop, where the note goes. */
const apiserverPlace = z.object({ name: z.string(), asideDir: z.string() }).catchall(z.union([z.string(), z.array(z.string())]));

const params = z.object({ action: z.enum(['stop', 'start']), hosts: z.array(apiserverPlace) });
export type ApiserversStep = Step<'apiservers', z.infer<typeof params>>;

/** "on root@10.0.0.1:22: mv … | on …": the API servers' stop or start, host by host, for a plan. */
function apiserverOperation(cluster: ClusterConfig, places: ApiserverPlace[], action: 'stop' | 'start'): string {
  const platform = platformOf(cluster);
  return places.map((a) => `on ${sshText(cluster, a.name)}: ${platform.apiserverText(a, action)}`).join(' | ');
}

/** kube-apiserver stopped on the masters the platform's way while etcd's data is replaced, and started again after. */
export const apiserversStep = {
  kind: 'apiservers',
  params,
  spec(i: { cluster: ClusterConfig; action: 'stop' | 'start'; places: ApiserverPlace[]; /** some masters are left out: their hosts could not be reached */ reachableOnly?: boolean }): ApiserversStep {
    return {
      kind: 'apiservers',
      title: i.action === 'start' ? `Start ${platformOf(i.cluster).apiserverNoun} again` : `Stop ${platformOf(i.cluster).apiserverNoun} on every ${i.reachableOnly ? 'reachable ' : ''}master`,
      destructive: i.action === 'stop',
      operation: apiserverOperation(i.cluster, i.places, i.action),
      params: { action: i.action, hosts: i.places },
    };
  },
  execute: (ctx, step) => apiservers(ctx.quorum, step, ctx.leaseLost),
  hosts: { tools: uniq([...LOCKED, 'mv']), members: (step) => step.params.hosts.map((h) => ({ member: h.name })) },
  // A run that ends before its own start of them (rejected at the fence, cancelled, failed) must not leave the control plane down.
  undo: (ctx, step) => undoApiserversStop(ctx.quorum, step),
} satisfies StepDefinition<'apiservers'>;
