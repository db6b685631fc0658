import type { ClusterConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';

/**
 * Why a plan cannot write these flags into the members' configs (null: it can).
 * Names and peer URLs come from the member list, which anyone with etcd write
 * access shapes: a value the platform's config cannot hold as written is
 * refused at planning, before any step runs, not at the write step after the
 * member was stopped.
 */
export function flagValuesProblem(cluster: ClusterConfig, flags: Record<string, string>): string | null {
  const platform = platformOf(cluster);
  for (const [flag, value] of Object.entries(flags)) {
    const problem = platform.flagValueProblem(value);
    if (problem) return `--${flag} would be ${JSON.stringify(value.slice(0, 200))}, which cannot go into ${platform.configNoun}: ${problem}. Correct the member's name or peer URL in etcd (\`etcdctl member update\`) or the inventory, then ask again. Nothing was changed.`;
  }
  return null;
}
