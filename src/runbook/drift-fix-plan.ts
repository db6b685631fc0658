import type { ClusterConfig, Inventory } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { rewriteReferencesStep } from '../steps/rewrite-references.js';
import type { ReferenceLook } from '../worker/references.js';
import { newRun } from './new-run.js';
import type { PlanOutcome } from './replace-plan.js';
import type { ObservedState, StepSpec } from './types.js';

export interface DriftFixRequest {
  runId: string;
  requestedBy: string;
  channelId: string;
}

/**
 * After a membership change, the OpenShift 3 runbook's last chores as a plan:
 * on each master, the files that name etcd's members (master-config.yaml's
 * etcdClientInfo.urls, etcd.conf's ETCD_INITIAL_CLUSTER, flanneld's endpoints)
 * set to the current members, then the API server restarted. One approved step
 * per master. Client URL lists keep the entries that still name a member as
 * they were written (a host name stays a host name); an initial cluster is
 * written whole from the member list.
 */
export function planDriftFix(inventory: Inventory, cluster: ClusterConfig, state: ObservedState, looks: ReferenceLook[], req: DriftFixRequest, now: Date): PlanOutcome {
  const fixable = looks.flatMap((l) => (l.state === 'drift' && l.ref.rewrite ? [l] : []));
  if (!fixable.length) {
    const unread = looks.filter((l) => l.state === 'unreadable').map((l) => `${l.member} ${l.ref.path}`);
    return {
      ok: false,
      reason: `nothing to fix on ${cluster.name}'s masters: every file the bot may rewrite names every member and nothing else${unread.length ? ` (could not read: ${unread.join(', ')})` : ''}. \`/etcd drift ${cluster.name}\` shows each file.`,
    };
  }
  const platform = platformOf(cluster);
  const steps: StepSpec[] = [];
  for (const m of cluster.members) {
    const mine = fixable.filter((l) => l.member === m.name);
    if (!mine.length) continue;
    const files = mine.map((l) => ({
      path: l.ref.path,
      what: l.ref.what,
      from: l.entries,
      to: l.ref.names === 'members' ? l.drift.wanted : [...l.entries.filter((e) => !l.drift.stale.includes(e)), ...l.drift.missing],
    }));
    steps.push(rewriteReferencesStep.spec({ cluster, member: m.name, asideDir: platform.paths(m).asideDir, files }));
  }
  const what = fixable.map((l) => `${l.member}: ${l.ref.what}${l.drift.stale.length ? ` names ${l.drift.stale.join(', ')}` : ''}${l.drift.missing.length ? `${l.drift.stale.length ? ',' : ''} misses ${l.drift.missing.join(', ')}` : ''}`).join('; ');
  return {
    ok: true,
    run: newRun(
      inventory,
      {
        runId: req.runId,
        runbook: 'drift-fix',
        title: `Fix the files that name etcd's members on ${cluster.name}`,
        rationale: `after a membership change, files on the masters still name removed members or miss new ones (${what}). Each master's files are rewritten from the member list as it is now, one approved step per master; the API server restarts where its config changed.`,
        cluster: cluster.name,
        target: cluster.name,
        steps,
        plannedState: state,
        requestedBy: req.requestedBy,
        channelId: req.channelId,
      },
      now,
    ),
  };
}
