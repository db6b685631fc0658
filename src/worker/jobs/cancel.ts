import type { JobEnvelope } from '../../queue/jobs.js';
import { TERMINAL } from '../../runbook/types.js';
import type { WorkerContext } from '../context.js';

type CancelJob = JobEnvelope & { request: { name: 'cancel' } };

/**
 * Marks the run to stop; the step in hand (if any) finishes, then the run ends
 * and its thread says exactly what was done and what was not.
 */
export async function runCancel(env: CancelJob, ctx: WorkerContext): Promise<string> {
  const { runId } = env.request.data;
  const run = await ctx.store.get(runId);
  const tell = async (text: string) => {
    await ctx.slack.ephemeral(env, text);
    return text;
  };
  if (!run) return tell(`There is no run \`${runId}\`. The run ID is on the plan message (\`r-…\`).`);
  if (run.channelId !== env.channelId) return tell(`Run \`${runId}\` belongs to <#${run.channelId}>; cancel it there.`);
  if (TERMINAL.includes(run.status)) return tell(`Run \`${runId}\` has already ended (${run.status}); nothing to cancel.`);
  const { changed } = await ctx.store.update(runId, (r) => (r.stopRequest || TERMINAL.includes(r.status) ? null : { ...r, stopRequest: { kind: 'cancel', by: env.userId, at: new Date().toISOString() } }));
  if (!changed) return tell(`Run \`${runId}\` is already stopping.`);
  await ctx.enqueueStep(runId, run.current, 'stop');
  return tell(`Cancel requested for run \`${runId}\`: it stops before its next step; the thread will say what was done.`);
}
