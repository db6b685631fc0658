import type { ClusterConfig, Inventory } from '../config/schema.js';
import { formatBytes, type MemberRow, type StatusReport } from '../status/assess.js';
import { alarmDisarmStep } from '../steps/alarm-disarm.js';
import { compactStep } from '../steps/compact.js';
import { defragMemberStep } from '../steps/defrag-member.js';
import { writeCheckStep } from '../steps/write-check.js';
import { newRun } from './new-run.js';
import type { PlanOutcome } from './replace-plan.js';
import type { ObservedState, StepSpec } from './types.js';

export interface DefragRequest {
  runId: string;
  requestedBy: string;
  channelId: string;
}

/** The configured endpoint of a member (the one the TLS setup expects), else its advertised URL. */
const urlOf = (cluster: ClusterConfig, m: MemberRow) => m.clientURLs.find((u) => cluster.etcd.endpoints.includes(u)) ?? m.clientURLs[0]!;

/**
 * Why the defragment cannot start now although quorum holds (a member down, a
 * learner, another alarm), or null. `/etcd status` asks the same before it
 * offers the Compact and defragment button, so the button is never one the
 * planner refuses.
 */
export function defragBlocker(cluster: ClusterConfig, report: StatusReport): string | null {
  const down = report.members.filter((m) => !m.started || !m.status);
  // A member being defragmented answers nothing, not even its status, until it ends; after a run whose defragment hit its
  // deadline it goes on for a while. Silent (connection open, no answer) is not dead: say so before anyone replaces it.
  const silent = down.filter((m) => m.started && m.error?.kind === 'timeout');
  if (silent.length && silent.length === down.length) {
    const names = silent.map((m) => `${m.name} (${m.idHex})`).join(', ');
    return (
      `${names} ${silent.length === 1 ? 'accepts connections but answers' : 'accept connections but answer'} nothing within the deadline. A member whose defragment is still running (one whose caller gave up, e.g. a run that hit its defrag deadline, or one by hand) answers nothing until it ends, and a second member must not be blocked meanwhile. ` +
      `Wait: its etcd log says \`finished defragment\` at the end, and \`/etcd status ${cluster.name}\` shows it answering with a smaller DB size; then \`/etcd defrag ${cluster.name}\` again. If it stays silent with no defragment running, it is frozen: \`/etcd replace ${silent[0]!.name} ${cluster.name}\`.`
    );
  }
  if (down.length) {
    const first = down[0]!;
    return (
      `${down.map((m) => `${m.name} (${m.idHex})`).join(', ')} ${down.length === 1 ? 'does' : 'do'} not answer. A defragment blocks the member it runs on, so with a member down it could cost the quorum: bring ${first.started ? first.name : 'it'} back or \`/etcd replace ${first.started ? first.name : first.idHex} ${cluster.name}\` first, then \`/etcd defrag ${cluster.name}\`.`
    );
  }
  const learners = report.members.filter((m) => m.learner);
  if (learners.length) return `${learners.map((m) => m.name).join(', ')} ${learners.length === 1 ? 'is a learner' : 'are learners'}: a membership change is half-done. Finish it first (\`/etcd status ${cluster.name}\`).`;
  // The leader is asked last and an election passes in seconds: that is no reason to hold the button back.
  const otherAlarms = [...new Set(report.members.flatMap((m) => m.alarms))].filter((a) => a !== 'NOSPACE');
  if (otherAlarms.length) {
    return `alarm ${otherAlarms.join(', ')} is raised: a corrupt member is not defragmented. Look at it first (\`/etcd status ${cluster.name}\`; a CORRUPT member is replaced with \`/etcd replace\`).`;
  }
  return null;
}

/**
 * The NOSPACE runbook as data (etcd's own "space quota" procedure): compact to the
 * revision seen now (approved), then defragment every member alone, followers
 * first and the leader last, the cluster healthy between each, then disarm the
 * alarm and check that writes work. Pure, from the live report; refused while a
 * member is down, since a defragment blocks the member it runs on.
 */
export function planDefrag(inventory: Inventory, cluster: ClusterConfig, report: StatusReport, state: ObservedState, req: DefragRequest, now: Date): PlanOutcome {
  if (report.verdict === 'QUORUM_LOST' || report.verdict === 'UNREACHABLE') {
    return { ok: false, reason: `the cluster has no quorum (${report.healthyVoters} of ${report.voters} voters up): it cannot compact. Use \`/etcd restore-quorum ${cluster.name}\` first.` };
  }
  const blocked = defragBlocker(cluster, report);
  if (blocked) return { ok: false, reason: blocked };
  const leader = report.members.find((m) => m.isLeader);
  if (!leader) return { ok: false, reason: 'the members do not agree on a leader (an election may be running). Ask again in a few seconds.' };

  // Followers first (by name, so the plan reads the same every time), the leader last.
  const order = [...report.members.filter((m) => !m.isLeader).sort((a, b) => a.name.localeCompare(b.name)), leader];
  const names = order.map((m) => m.name);
  const timeoutSeconds = cluster.etcd.defragTimeoutSeconds;
  const steps: StepSpec[] = [
    compactStep.spec({ revision: state.revision, via: { name: leader.name, url: urlOf(cluster, leader) } }),
    ...order.map((m, i) =>
      defragMemberStep.spec({ name: m.name, idHex: m.idHex!, url: urlOf(cluster, m), dbSize: m.status!.dbSize, role: m === leader ? 'leader' : 'follower', before: names.slice(0, i), after: names.slice(i + 1), timeoutSeconds }),
    ),
    alarmDisarmStep.spec({ quotaBytes: cluster.etcd.quotaBytes, raised: report.members.filter((m) => m.alarms.includes('NOSPACE')).map((m) => m.name) }),
    writeCheckStep.spec({ runId: req.runId, voters: report.members.length }),
  ];

  const nospace = report.members.some((m) => m.alarms.includes('NOSPACE'));
  const sizes = order.map((m) => `${m.name} ${formatBytes(m.status!.dbSize)} (${formatBytes(m.status!.dbSizeInUse)} in use)`).join(', ');
  const rationale =
    `${nospace ? 'NOSPACE is raised: the cluster takes only reads and deletes.' : 'No alarm is raised; this frees space before the quota is reached.'} ` +
    `Databases: ${sizes}; quota ${formatBytes(cluster.etcd.quotaBytes)} as the inventory says (the alarm is disarmed against the quota each member runs with, asked of it then). Compacting drops the history before revision ${state.revision} (the only step that needs approval: it cannot be undone); ` +
    `each defragment then blocks one member for its duration, so they run one at a time, ${leader.name} (the leader) last, the cluster checked healthy before and after each.`;
  const run = newRun(
    inventory,
    { runId: req.runId, runbook: 'defrag', title: `Compact and defragment ${cluster.name}`, rationale, cluster: cluster.name, target: cluster.name, steps, plannedState: state, requestedBy: req.requestedBy, channelId: req.channelId },
    now,
  );
  return { ok: true, run };
}
