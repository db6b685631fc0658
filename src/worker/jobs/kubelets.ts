import { randomBytes } from 'node:crypto';
import type { JobEnvelope } from '../../queue/jobs.js';
import { planKubeletsRenew } from '../../runbook/kubelets-plan.js';
import { viewCluster } from '../cluster-view.js';
import type { WorkerContext } from '../context.js';
import { refuse, startRun } from './start-run.js';

type PlanJob = JobEnvelope & { request: { name: 'plan-kubelets-renew' } };

/** `/etcd kubelets renew`: the plan posted for approval (each host it touches looked at first), then step 1 queued. */
export async function runPlanKubeletsRenew(env: PlanJob, ctx: WorkerContext): Promise<string> {
  const { cluster: clusterName, nodes } = env.request.data;
  const what = `/etcd kubelets renew ${[clusterName, ...nodes].join(' ')}`;
  const cluster = ctx.inventory.clusters.find((c) => c.name === clusterName);
  if (!cluster) return refuse(ctx, env, what, `cluster "${clusterName}" is not in this worker's inventory. Type \`/etcd help\` for the known clusters.`);
  const holder = await ctx.store.lockHolder(cluster.name);
  if (holder) return refuse(ctx, env, what, `run \`${holder}\` is working on ${cluster.name}; one run at a time. \`/etcd cancel ${holder}\` stops it.`);
  // The etcd state the approvals are bound to: a membership change meanwhile voids them, as for every runbook.
  const view = await viewCluster(cluster, ctx.pool);
  const runId = `r-${randomBytes(4).toString('hex')}`;
  return startRun(ctx, env, what, planKubeletsRenew(ctx.inventory, cluster, view.state, { runId, nodes, requestedBy: env.userId, channelId: env.channelId }, new Date()));
}
