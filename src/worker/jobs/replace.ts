import { randomBytes } from 'node:crypto';
import type { JobEnvelope } from '../../queue/jobs.js';
import { planReplace } from '../../runbook/replace-plan.js';
import { viewCluster } from '../cluster-view.js';
import type { WorkerContext } from '../context.js';

type PlanJob = JobEnvelope & { request: { name: 'plan-replace' } };

/** Preflight (read-only), then the plan posted for approval, then step 1 queued. */
export async function runPlanReplace(env: PlanJob, ctx: WorkerContext): Promise<string> {
  const { cluster: clusterName, target, force } = env.request.data;
  const cluster = ctx.inventory.clusters.find((c) => c.name === clusterName);
  const refuse = async (reason: string) => {
    await ctx.slack.postTo(env.channelId, {
      text: `Replace ${target} in ${clusterName} refused: ${reason}`,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `:no_entry: *\`/etcd replace ${target}\` refused* (asked by <@${env.userId}>): ${reason}`.slice(0, 3000) } }],
    });
    return `refused: ${reason}`;
  };
  if (!cluster) return refuse(`cluster "${clusterName}" is not in this worker's inventory.`);

  const holder = await ctx.store.lockHolder(cluster.name);
  if (holder) return refuse(`run \`${holder}\` is already working on ${cluster.name}; one membership change at a time. \`/etcd cancel ${holder}\` stops it.`);

  const view = await viewCluster(cluster, ctx.pool);
  const runId = `r-${randomBytes(4).toString('hex')}`;
  const outcome = planReplace(ctx.inventory, cluster, view.report, view.state, { runId, target, force, requestedBy: env.userId, channelId: env.channelId }, new Date());
  if (!outcome.ok) return refuse(outcome.reason);

  const taken = await ctx.store.lockCluster(cluster.name, runId);
  if (taken) return refuse(`run \`${taken}\` started on ${cluster.name} a moment ago; one membership change at a time.`);
  await ctx.store.create(outcome.run);
  await ctx.notifier.planChanged(outcome.run);
  await ctx.enqueueStep(runId, 0);
  return `planned ${runId}`;
}
