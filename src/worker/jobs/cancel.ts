import { recorder } from '../../incident/record.js';
import { putBackAndFree } from '../../runbook/engine.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { TERMINAL, type Run } from '../../runbook/types.js';
import type { WorkerContext } from '../context.js';
import { replyTo } from '../reply-to.js';

type CancelJob = JobEnvelope & { request: { name: 'cancel' } };

/**
 * Marks the run to stop; the step in hand (if any) finishes, then the run ends
 * and its thread says exactly what was done and what was not. A cluster lock
 * left by a run that is gone or has ended is released here too, on the record.
 */
export async function runCancel(env: CancelJob, ctx: WorkerContext): Promise<string> {
  const { runId } = env.request.data;
  const run = await ctx.store.get(runId);
  const tell = async (text: string) => {
    await ctx.chat.ephemeral(replyTo(env), text);
    return text;
  };
  if (!run || TERMINAL.includes(run.status)) {
    const cleared = await clearOrphanedLocks(ctx, runId, env, run, run ? `it has ended (${run.status})` : 'that run does not exist');
    if (cleared.length) return tell(`Run \`${runId}\` ${run ? `had already ended (${run.status})` : 'does not exist'} but still held the lock of ${cleared.join(', ')}: released, and noted on the timeline. A new run can start there now.`);
    if (!run) return tell(`There is no run \`${runId}\`. The run ID is on the plan message (\`r-…\`).`);
    return tell(`Run \`${runId}\` has already ended (${run.status}); nothing to cancel.`);
  }
  if (run.channelId !== env.channelId) return tell(`Run \`${runId}\` belongs to <#${run.channelId}>; cancel it there.`);
  const { changed } = await ctx.store.apply(runId, { kind: 'stop', how: 'cancel', by: env.userId }, new Date());
  if (!changed) return tell(`Run \`${runId}\` is already stopping.`);
  await ctx.enqueueStep(runId, run.current, 'stop');
  return tell(`Cancel requested for run \`${runId}\`: a step in progress that waits (a snapshot, a catch-up wait) stops within seconds, any other at its end; nothing after it runs. The thread will say what was done.`);
}

/** Releases every cluster lock that names `runId` (a run that is missing or ended); returns the clusters. */
async function clearOrphanedLocks(ctx: WorkerContext, runId: string, env: JobEnvelope, run: Run | null, why: string): Promise<string[]> {
  const cleared: string[] = [];
  const incidentId = run?.incidentId;
  for (const l of await ctx.store.locks()) {
    if (l.runId !== runId) continue;
    // An ended run still holding its lock lost its worker before it put back what it changed: done here, first.
    const end = { store: ctx.store, undoOnEnd: ctx.undoOnEnd, notify: ctx.notifier, log: ctx.log };
    // A person asked: the cluster is freed even if the put-back still fails (said, with what is left to do by hand).
    if (!(await (run && run.cluster === l.cluster ? putBackAndFree(run, end, { force: true, by: env.userId }) : ctx.store.unlockCluster(l.cluster, runId)))) continue;
    cleared.push(l.cluster);
    ctx.log.warn({ run: runId, cluster: l.cluster, by: env.userId }, 'orphaned cluster lock released by /etcd cancel');
    await recorder(ctx.incidents, ctx.log)(env.channelId, { kind: 'run', actor: env.userId, runId, incidentId, text: `Released the lock of ${l.cluster} held by run \`${runId}\` (${why}).` });
  }
  return cleared;
}
