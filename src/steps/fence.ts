import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { fence, UNTOUCHED } from '../worker/steps/quorum-steps.js';
import { MOVE_ASIDE, uniq } from './host-tools.js';
import { sshText } from './plan-text.js';
import { hostPlace, type HostPlace } from './places.js';
import { stoppedLeftBehind } from './stopped-left.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({
  hosts: z.array(hostPlace),
  /** Members whose hosts could not be reached when planned: whoever approves confirms they are down; not touched. */
  unconfirmed: z.array(z.string()),
  /** Stop a member still running (a restore of the whole cluster) instead of refusing to fence it. */
  stopRunning: z.boolean().optional(),
});
export type FenceStep = Step<'fence', z.infer<typeof params>>;

type FenceInput = { cluster: ClusterConfig; places: HostPlace[] } & (
  | { runbook: 'restore' }
  | { runbook: 'restore-quorum'; /** hosts not reachable over SSH when planned, with why */ unconfirmed: { name: string; error?: string }[] }
);

/**
 * Members stopped and their data moved aside so none comes back with old data
 * (a "cluster ID mismatch"): after a lost quorum, those that should be dead
 * (refused if one still runs); before a restore, every member.
 */
export const fenceStep = {
  kind: 'fence',
  params,
  spec(i: FenceInput): FenceStep {
    const platform = platformOf(i.cluster);
    const names = i.places.map((p) => p.name).join(', ');
    if (i.runbook === 'restore') {
      return {
        kind: 'fence',
        title: `Stop etcd on ${names} and move their data aside`,
        destructive: true,
        operation: i.places
          .map((p) => `on ${sshText(i.cluster, p.name)}: ${platform.stopText(p)}; wait until etcd is gone (nothing on ${p.listen.join(', ')}, no etcd process on ${p.dataDir}); mv ${p.dataDir} ${p.dataAside}`)
          .join(' | '),
        params: { hosts: i.places, unconfirmed: [], stopRunning: true },
      };
    }
    const down = i.unconfirmed.map((u) => u.name);
    return {
      kind: 'fence',
      title: `Fence ${names}`,
      destructive: true,
      operation: [
        ...i.places
          .filter((f) => !down.includes(f.name))
          .map((f) => `on ${sshText(i.cluster, f.name)}: refuse if etcd still runs (anything on ${f.listen.join(', ')}, an etcd process on ${f.dataDir}); ${platform.stopText(f)}; mv ${f.dataDir} ${f.dataAside}`),
        ...i.unconfirmed.map((u) => `${u.name}: host unreachable over SSH (${u.error ?? 'unknown'}); approving confirms it is down and will stay down until it is rebuilt`),
      ].join(' | '),
      params: { hosts: i.places, unconfirmed: down },
    };
  },
  execute: (ctx, step) => fence(ctx.quorum, step, ctx.leaseLost),
  hosts: {
    tools: uniq(MOVE_ASIDE),
    members: (step) => step.params.hosts.filter((h) => !step.params.unconfirmed.includes(h.name)).map((h) => ({ member: h.name })),
    // The plan already counts on them being gone.
    down: (step) => step.params.unconfirmed,
  },
  // Ended before the run started them again (a restore cancelled or failed midway): where their configs and data are.
  leftBehind: (run, index, step) => {
    const hosts = step.params.hosts.filter((h) => !step.params.unconfirmed.includes(h.name));
    return stoppedLeftBehind(run, index, hosts, (error) => fenceUntouched(error, hosts.map((h) => h.name)));
  },
} satisfies StepDefinition<'fence'>;

/**
 * The hosts a failed fence left as they were, from its error: each line of
 * fenceFailure that says so. An error of another shape (recorded before the
 * fence said each host's outcome) is read as it was then: a refusal, all hosts
 * untouched.
 */
export function fenceUntouched(error: string, names: string[]): string[] {
  if (!error.startsWith('fencing failed on ')) return /refusing to fence|nothing was done by this one/.test(error) ? names : [];
  return names.filter((n) => error.includes(`\n• ${n}${UNTOUCHED}: `));
}
