import type { JobEnvelope } from '../../queue/jobs.js';
import type { PlanOutcome } from '../../runbook/replace-plan.js';
import type { WorkerContext } from '../context.js';
import { recorder } from '../../incident/record.js';
import { openIncident } from '../incidents.js';
import { hostsNotReady } from '../host-readiness.js';
import { sealPlan } from '../../approvals/sign.js';

/** Tells the channel a runbook was refused, and why: everyone in the incident sees it, and its timeline keeps it. */
export async function refuse(ctx: WorkerContext, env: JobEnvelope, what: string, reason: string): Promise<string> {
  await recorder(ctx.incidents, ctx.log)(env.channelId, { kind: 'denied', actor: env.userId, text: `${what} refused: ${reason}` });
  await ctx.chat.post(env.channelId, {
    text: `${what} refused: ${reason}`,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `:no_entry: *\`${what}\` refused* (asked by <@${env.userId}>): ${reason}`.slice(0, 3000) } }],
  });
  return `refused: ${reason}`;
}

/**
 * Stores a planned run together with its cluster's lock (one atomic write), posts
 * the plan and queues its first step. If that fails half-way the run is ended
 * and the lock released, so no lock is left without a run that will release it.
 */
export async function startRun(ctx: WorkerContext, env: JobEnvelope, what: string, outcome: PlanOutcome): Promise<string> {
  if (!outcome.ok) return refuse(ctx, env, what, outcome.reason);
  // Every host the plan touches over SSH, looked at now: a plan that would stop halfway for want of a host or a tool is not started.
  const cluster = ctx.inventory.clusters.find((c) => c.name === outcome.run.cluster);
  const notReady = cluster ? await hostsNotReady(cluster, outcome.run.steps) : `cluster "${outcome.run.cluster}" is not in this worker's inventory.`;
  if (notReady) return refuse(ctx, env, what, `a host the plan touches is not ready, so nothing was started or changed.\n${notReady}\nFix it, then ask again.`);
  // The first runbook in a channel without an incident opens one; the run keeps its ID
  // so that its entries go there even if the channel's incident is closed mid-run.
  const { incident } = await openIncident(ctx.incidents, ctx.chat, env.channelId, outcome.run.title, outcome.run.requestedBy);
  // Bound to that incident (its signed timeline records the run's steps) and signed: see sealPlan.
  const run = sealPlan(ctx.hmacKey, { ...outcome.run, incidentId: incident.id });
  const taken = await ctx.store.createLocked(run);
  if (taken) return refuse(ctx, env, what, `run \`${taken}\` is working on ${run.cluster}; one membership change at a time. \`/etcd cancel ${taken}\` stops it.`);
  try {
    const record = recorder(ctx.incidents, ctx.log);
    const steps = run.steps.map((s, i) => `${i + 1}. ${s.title}${s.destructive ? ' (destructive)' : ''}`).join('; ');
    const members = run.plannedState.members.map((m) => `${m.name || '?'} ${m.idHex} ${m.learner ? 'learner' : 'voter'} ${m.reachable ? 'up' : 'DOWN'}`).join(', ');
    await record(run.channelId, { kind: 'plan', actor: run.requestedBy, runId: run.runId, incidentId: run.incidentId, text: `Plan \`${run.runId}\` (${run.title}), hash ${run.planHash.slice(0, 12)}: ${steps}` });
    await record(run.channelId, { kind: 'state', actor: 'bot', runId: run.runId, incidentId: run.incidentId, text: `Planned against: ${members}; leader ${run.plannedState.leaderHex ?? 'none'}, raft index ${run.plannedState.raftIndex}, revision ${run.plannedState.revision}` });
    await ctx.notifier.planChanged(run);
    // The thread is the incident's record: it says which path was taken, why, and what it costs.
    if (run.rationale) await ctx.notifier.thread(run, `:compass: ${run.rationale}`);
    await ctx.enqueueStep(run.runId, 0);
  } catch (err) {
    await undoStart(ctx, run.runId, run.cluster, (err as Error).message);
    throw err;
  }
  return `planned ${run.runId}`;
}

/** Ends a run that could not be started and frees its lock. If this fails too (Redis gone), the sweeper finishes the job. */
async function undoStart(ctx: WorkerContext, runId: string, cluster: string, why: string): Promise<void> {
  try {
    const { run, changed } = await ctx.store.apply(runId, { kind: 'abandon', reason: `the run could not be started: ${why}` }, new Date());
    await ctx.store.unlockCluster(cluster, runId);
    if (changed) await ctx.notifier.thread(run, `:x: Run \`${runId}\` could not be started (${why.slice(0, 300)}); nothing was done and ${cluster} is free again.`);
  } catch (err) {
    ctx.log.error({ run: runId, err: (err as Error).message }, 'could not undo a half-started run; the sweeper will');
  }
}
