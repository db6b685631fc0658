import { randomBytes } from 'node:crypto';
import type { JobEnvelope } from '../../queue/jobs.js';
import { hostRunbookRefusal } from '../../platform/index.js';
import { planRestore } from '../../runbook/restore-plan.js';
import { viewCluster } from '../cluster-view.js';
import type { WorkerContext } from '../context.js';
import { refuse, startRun } from './start-run.js';

type PlanJob = JobEnvelope & { request: { name: 'plan-restore' } };

/** The whole cluster back to a backup: checked, planned, posted for approval. */
export async function runPlanRestore(env: PlanJob, ctx: WorkerContext): Promise<string> {
  const { cluster: clusterName, backupId } = env.request.data;
  const what = `/etcd restore ${backupId}`;
  const cluster = ctx.inventory.clusters.find((c) => c.name === clusterName);
  if (!cluster) return refuse(ctx, env, what, `cluster "${clusterName}" is not in this worker's inventory.`);
  const hostless = hostRunbookRefusal(cluster, '/etcd restore');
  if (hostless) return refuse(ctx, env, what, hostless);
  const holder = await ctx.store.lockHolder(cluster.name);
  if (holder) return refuse(ctx, env, what, `run \`${holder}\` is already working on ${cluster.name}. \`/etcd cancel ${holder}\` stops it.`);
  const backup = await ctx.backups.get(cluster.name, backupId);
  if (!backup) return refuse(ctx, env, what, `no backup \`${backupId}\` of ${cluster.name}; \`/etcd backups ${cluster.name}\` lists them.`);
  const view = await viewCluster(cluster, ctx.pool);
  const runId = `r-${randomBytes(4).toString('hex')}`;
  return startRun(ctx, env, what, planRestore(ctx.inventory, cluster, view.report, view.state, { runId, backup, requestedBy: env.userId, channelId: env.channelId }, new Date()));
}
