import type { JobEnvelope } from '../../queue/jobs.js';
import type { PlanOutcome } from '../../runbook/replace-plan.js';
import type { WorkerContext } from '../context.js';
import { recorder } from '../../incident/record.js';
import { openIncident } from '../incidents.js';
import { hostsNotReady } from '../host-readiness.js';

/** Tells the channel a runbook was refused, and why: everyone in the incident sees it, and its timeline keeps it. */
export async function refuse(ctx: WorkerContext, env: JobEnvelope, what: string, reason: string): Promise<string> {
  await recorder(ctx.incidents, ctx.log)(env.channelId, { kind: 'denied', actor: env.userId, text: `${what} refused: ${reason}` });
  await ctx.slack.postTo(env.channelId, {
    text: `${what} refused: ${reason}`,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `:no_entry: *\`${what}\` refused* (asked by <@${env.userId}>): ${reason}`.slice(0, 3000) } }],
  });
  return `refused: ${reason}`;
}

/** Takes the cluster's lock for a planned run, stores it, posts the plan and queues its first step. */
export async function startRun(ctx: WorkerContext, env: JobEnvelope, what: string, outcome: PlanOutcome): Promise<string> {
  if (!outcome.ok) return refuse(ctx, env, what, outcome.reason);
  const run = outcome.run;
  // Every host the plan touches over SSH, looked at now: a plan that would stop halfway for want of a host or a tool is not started.
  const cluster = ctx.inventory.clusters.find((c) => c.name === run.cluster);
  const notReady = cluster ? await hostsNotReady(cluster, run.steps) : `cluster "${run.cluster}" is not in this worker's inventory.`;
  if (notReady) return refuse(ctx, env, what, `a host the plan touches is not ready, so nothing was started or changed.\n${notReady}\nFix it, then ask again.`);
  const taken = await ctx.store.lockCluster(run.cluster, run.runId);
  if (taken) return refuse(ctx, env, what, `run \`${taken}\` started on ${run.cluster} a moment ago; one membership change at a time.`);
  await ctx.store.create(run);
  // The first runbook in a channel without an incident opens one.
  await openIncident(ctx.incidents, ctx.slack, run.channelId, run.title, run.requestedBy);
  const record = recorder(ctx.incidents, ctx.log);
  const steps = run.steps.map((s, i) => `${i + 1}. ${s.title}${s.destructive ? ' (destructive)' : ''}`).join('; ');
  const members = run.plannedState.members.map((m) => `${m.name || '?'} ${m.idHex} ${m.learner ? 'learner' : 'voter'} ${m.reachable ? 'up' : 'DOWN'}`).join(', ');
  await record(run.channelId, { kind: 'plan', actor: run.requestedBy, runId: run.runId, text: `Plan \`${run.runId}\` (${run.title}), hash ${run.planHash.slice(0, 12)}: ${steps}` });
  await record(run.channelId, { kind: 'state', actor: 'bot', runId: run.runId, text: `Planned against: ${members}; leader ${run.plannedState.leaderHex ?? 'none'}, raft index ${run.plannedState.raftIndex}, revision ${run.plannedState.revision}` });
  await ctx.notifier.planChanged(run);
  // The thread is the incident's record: it says which path was taken, why, and what it costs.
  if (run.rationale) await ctx.notifier.thread(run, `:compass: ${run.rationale}`);
  await ctx.enqueueStep(run.runId, 0);
  return `planned ${run.runId}`;
}
