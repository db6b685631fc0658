import type { JobEnvelope } from '../../queue/jobs.js';
import type { PlanOutcome } from '../../runbook/replace-plan.js';
import type { WorkerContext } from '../context.js';

/** Tells the channel a runbook was refused, and why: everyone in the incident sees it. */
export async function refuse(ctx: WorkerContext, env: JobEnvelope, what: string, reason: string): Promise<string> {
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
  const taken = await ctx.store.lockCluster(run.cluster, run.runId);
  if (taken) return refuse(ctx, env, what, `run \`${taken}\` started on ${run.cluster} a moment ago; one membership change at a time.`);
  await ctx.store.create(run);
  await ctx.notifier.planChanged(run);
  // The thread is the incident's record: it says which path was taken, why, and what it costs.
  if (run.rationale) await ctx.notifier.thread(run, `:compass: ${run.rationale}`);
  await ctx.enqueueStep(run.runId, 0);
  return `planned ${run.runId}`;
}
