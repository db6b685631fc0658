import { randomBytes } from 'node:crypto';
import type { JobEnvelope } from '../../queue/jobs.js';
import { planReplace } from '../../runbook/replace-plan.js';
import { viewCluster } from '../cluster-view.js';
import type { WorkerContext } from '../context.js';
import { memberOfTarget, probeForReplace } from '../replace-probe.js';
import { refuse, startRun } from './start-run.js';
import { hostsNotReady, layoutNeeds } from '../host-readiness.js';
import { platformOf } from '../../platform/index.js';

type PlanJob = JobEnvelope & { request: { name: 'plan-replace' } };

/** Preflight (read-only: the cluster, the member's host and its peers'), then the plan posted for approval, then step 1 queued. */
export async function runPlanReplace(env: PlanJob, ctx: WorkerContext): Promise<string> {
  const { cluster: clusterName, target, force } = env.request.data;
  const what = `/etcd replace ${target}`;
  const cluster = ctx.inventory.clusters.find((c) => c.name === clusterName);
  if (!cluster) return refuse(ctx, env, what, `cluster "${clusterName}" is not in this worker's inventory.`);
  const holder = await ctx.store.lockHolder(cluster.name);
  if (holder) return refuse(ctx, env, what, `run \`${holder}\` is already working on ${cluster.name}; one membership change at a time. \`/etcd cancel ${holder}\` stops it.`);

  const view = await viewCluster(cluster, ctx.pool);
  let hosts: Awaited<ReturnType<typeof probeForReplace>>;
  // etcd as a Kubernetes workload has no host to look at: its steps go through the admin cluster's API.
  if (!platformOf(cluster).workload) {
    // A host laid out for another platform has no config where this one looks: it is refused as such, not taken for a rebuilt one.
    const member = memberOfTarget(cluster, view.report, target);
    const misfit = member && (await hostsNotReady(cluster, layoutNeeds([member.name], `planning the replace of ${member.name}`)));
    if (misfit) return refuse(ctx, env, what, `a host the plan touches is not ready, so nothing was started or changed.\n${misfit}\nFix it, then ask again.`);
    // The member's host and its healthy peers', read only: a rebuilt host gets its config and certificates in the plan.
    hosts = await probeForReplace(cluster, view.report, target);
  }
  const runId = `r-${randomBytes(4).toString('hex')}`;
  const outcome = planReplace(ctx.inventory, cluster, view.report, view.state, { runId, target, force, requestedBy: env.userId, channelId: env.channelId }, new Date(), hosts);
  return startRun(ctx, env, what, outcome);
}
