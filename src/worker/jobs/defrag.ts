import { randomBytes } from 'node:crypto';
import type { JobEnvelope } from '../../queue/jobs.js';
import { planDefrag } from '../../runbook/defrag-plan.js';
import { viewCluster } from '../cluster-view.js';
import type { WorkerContext } from '../context.js';
import { refuse, startRun } from './start-run.js';

type PlanJob = JobEnvelope & { request: { name: 'plan-defrag' } };

/** Every member looked at over the etcd API (nothing on the hosts: the runbook works through the API alone), then the plan for approval. */
export async function runPlanDefrag(env: PlanJob, ctx: WorkerContext): Promise<string> {
  const { cluster: clusterName } = env.request.data;
  const what = `/etcd defrag ${clusterName}`;
  const cluster = ctx.inventory.clusters.find((c) => c.name === clusterName);
  if (!cluster) return refuse(ctx, env, what, `cluster "${clusterName}" is not in this worker's inventory.`);
  const holder = await ctx.store.lockHolder(cluster.name);
  if (holder) return refuse(ctx, env, what, `run \`${holder}\` is already working on ${cluster.name}; one runbook at a time. \`/etcd cancel ${holder}\` stops it.`);
  const view = await viewCluster(cluster, ctx.pool);
  const runId = `r-${randomBytes(4).toString('hex')}`;
  return startRun(ctx, env, what, planDefrag(ctx.inventory, cluster, view.report, view.state, { runId, requestedBy: env.userId, channelId: env.channelId }, new Date()));
}
