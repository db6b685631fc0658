import { randomBytes } from 'node:crypto';
import type { Inventory } from '../../config/schema.js';
import { planDriftFix } from '../../runbook/drift-fix-plan.js';
import type { WorkerContext } from '../context.js';
import { refuse, startRun } from './start-run.js';
import type { EtcdPool } from '../../etcd/pool.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { renderReferences } from '../../render/references-message.js';
import type { Chat } from '../../chat/port.js';
import { replyTo } from '../reply-to.js';
import { refuseUnknownCluster } from './unknown-cluster.js';
import { viewCluster } from '../cluster-view.js';
import { lookAtReferences } from '../references.js';

export interface DriftDeps {
  inventory: Inventory;
  pool: EtcdPool;
  chat: Chat;
}

/**
 * `/etcd drift`: the files on each master that name etcd's members, compared
 * with the member list as `/etcd status` sees it. Reads only.
 */
export async function runDrift(env: JobEnvelope & { request: { name: 'drift' } }, deps: DriftDeps): Promise<string> {
  const cluster = deps.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  if (!cluster) {
    return refuseUnknownCluster(deps.chat, replyTo(env), env.request.data.cluster);
  }
  const { report } = await viewCluster(cluster, deps.pool);
  if (!report.members.length) {
    await deps.chat.answer(replyTo(env), { text: `No member of ${cluster.name} answers: without the member list there is nothing to compare the masters' files with. \`/etcd status ${cluster.name}\` shows why.`, blocks: [] });
    return 'no member list';
  }
  const looks = await lookAtReferences(cluster, report.members);
  const fix = { command: 'drift', args: [cluster.name, 'fix'], label: 'Plan the fix of these files' };
  await deps.chat.answer(replyTo(env), renderReferences(cluster.name, looks, { footer: `asked by <@${env.userId}> · job ${env.requestId}`, fix }));
  return `${looks.filter((l) => l.state === 'drift').length} of ${looks.length} files disagree`;
}

type PlanJob = JobEnvelope & { request: { name: 'plan-drift-fix' } };

/** `/etcd drift fix`: the files looked at again, and the rewrite planned for approval (one step per master). */
export async function runPlanDriftFix(env: PlanJob, ctx: WorkerContext): Promise<string> {
  const what = `/etcd drift fix ${env.request.data.cluster}`;
  const cluster = ctx.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  if (!cluster) return refuse(ctx, env, what, `cluster "${env.request.data.cluster}" is not in this worker's inventory.`);
  const holder = await ctx.store.lockHolder(cluster.name);
  if (holder) return refuse(ctx, env, what, `run \`${holder}\` is working on ${cluster.name}; fix the files once it has ended. \`/etcd cancel ${holder}\` stops it.`);
  const view = await viewCluster(cluster, ctx.pool);
  if (view.report.verdict === 'QUORUM_LOST' || view.report.verdict === 'UNREACHABLE') {
    return refuse(ctx, env, what, `${cluster.name} has no quorum: its member list is not settled, so there is nothing to set these files to yet. Restore quorum first (\`/etcd restore-quorum ${cluster.name}\`).`);
  }
  const looks = await lookAtReferences(cluster, view.report.members);
  const runId = `r-${randomBytes(4).toString('hex')}`;
  return startRun(ctx, env, what, planDriftFix(ctx.inventory, cluster, view.state, looks, { runId, requestedBy: env.userId, channelId: env.channelId }, new Date()));
}
