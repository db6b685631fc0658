import { randomBytes } from 'node:crypto';
import type { JobEnvelope } from '../../queue/jobs.js';
import { hostRunbookRefusal } from '../../platform/index.js';
import { planRestoreQuorum } from '../../runbook/restore-quorum-plan.js';
import { viewCluster } from '../cluster-view.js';
import type { WorkerContext } from '../context.js';
import { probeHost } from '../host-probe.js';
import { hostsNotReady, rankingNeeds } from '../host-readiness.js';
import { refuse, startRun } from './start-run.js';

type PlanJob = JobEnvelope & { request: { name: 'plan-restore-quorum' } };

/** Read-only preflight: every member over the etcd API and every host over SSH; then the plan for approval. */
export async function runPlanRestoreQuorum(env: PlanJob, ctx: WorkerContext): Promise<string> {
  const { cluster: clusterName, from, snapshot } = env.request.data;
  const what = `/etcd restore-quorum${from ? ` --from ${from}` : ''}${snapshot ? ` --snapshot ${snapshot}` : ''}`;
  const cluster = ctx.inventory.clusters.find((c) => c.name === clusterName);
  if (!cluster) return refuse(ctx, env, what, `cluster "${clusterName}" is not in this worker's inventory.`);
  // Before any member's host is probed over SSH: a cluster without hosts to reach is refused at once.
  const hostless = hostRunbookRefusal(cluster, '/etcd restore-quorum');
  if (hostless) return refuse(ctx, env, what, hostless);
  const holder = await ctx.store.lockHolder(cluster.name);
  if (holder) return refuse(ctx, env, what, `run \`${holder}\` is already working on ${cluster.name}. \`/etcd cancel ${holder}\` stops it.`);
  const facts = snapshot ? await ctx.backups.get(cluster.name, snapshot) : undefined;
  if (snapshot && !facts) return refuse(ctx, env, what, `no backup \`${snapshot}\` of ${cluster.name}; \`/etcd backups ${cluster.name}\` lists them.`);

  // The member list first: "is etcd still listening?" is asked on every address it names, not only the inventory's.
  const view = await viewCluster(cluster, ctx.pool);
  const hosts = await Promise.all(cluster.members.map((m) => probeHost(cluster, m, view.report.members)));
  if (!snapshot && !from) {
    // A stopped member whose database revision could not be read would be passed over as a survivor: find out why first.
    const unread = hosts.filter((h) => h.reachable && !h.listening && h.hasData && h.offlineRevision === null).map((h) => h.name);
    const blind = unread.length ? await hostsNotReady(cluster, rankingNeeds(unread)) : null;
    if (blind) return refuse(ctx, env, what, `the most up-to-date member cannot be chosen safely, so nothing was changed.\n${blind}\nFix it and ask again, or name the survivor with \`--from <member>\`.`);
  }
  const runId = `r-${randomBytes(4).toString('hex')}`;
  const outcome = planRestoreQuorum(ctx.inventory, cluster, view.report, view.state, hosts, { runId, from, snapshot: facts ?? undefined, requestedBy: env.userId, channelId: env.channelId }, new Date());
  return startRun(ctx, env, what, outcome);
}
