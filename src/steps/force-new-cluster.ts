import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { forceNewCluster, undoForceNewCluster } from '../worker/steps/quorum-steps.js';
import { CHECKED_IO, LOCKED, uniq } from './host-tools.js';
import { sshText } from './plan-text.js';
import { memberOnHost, onHost, type HostPlace } from './places.js';
import type { Step, StepDefinition } from './types.js';

const params = memberOnHost.extend({ /** the survivor's client URL, to see it lead alone */ endpoint: z.string() });
export type ForceNewClusterStep = Step<'force-new-cluster', z.infer<typeof params>>;

/** The survivor of a lost quorum restarted as a one-member cluster with --force-new-cluster, then without the flag. */
export const forceNewClusterStep = {
  kind: 'force-new-cluster',
  params,
  spec(i: { cluster: ClusterConfig; place: HostPlace; endpoint: string }): ForceNewClusterStep {
    const s = i.place;
    return {
      kind: 'force-new-cluster',
      title: `Start ${s.name} with --force-new-cluster, then without it`,
      destructive: true,
      operation: `on ${sshText(i.cluster, s.name)}: keep ${s.config} as ${s.configAside}; write it with --force-new-cluster (${platformOf(i.cluster).startText('restart')}); wait until ${s.name} leads a one-member cluster; write it back without the flag, wait for the restart, confirm the flag is gone from ${s.config}`,
      params: { ...onHost(s), endpoint: i.endpoint },
    };
  },
  execute: (ctx, step) => forceNewCluster(ctx.quorum, step, ctx.leaseLost),
  hosts: { tools: uniq([...LOCKED, 'cp', ...CHECKED_IO]), members: (step) => [{ member: step.params.name }] },
  // The flag never stays, also when the run ends with this step half-done.
  // A step that ended done or skipped read its config back without the flag: nothing to look at.
  undo: (ctx, step) => (['done', 'skipped'].includes(ctx.run.records[ctx.index]?.status ?? '') ? Promise.resolve(null) : undoForceNewCluster(ctx.quorum, step)),
} satisfies StepDefinition<'force-new-cluster'>;
