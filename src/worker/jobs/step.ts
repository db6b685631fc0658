import type { JobEnvelope } from '../../queue/jobs.js';
import { processStep, type EngineDeps } from '../../runbook/engine.js';
import type { WorkerContext } from '../context.js';

type StepJob = JobEnvelope & { request: { name: 'step' } };

/** Another job of the same run is executing: BullMQ retries this one shortly. */
export class RunBusy extends Error {}

export async function runStep(env: StepJob, ctx: WorkerContext, engine: EngineDeps, leaseMs: number): Promise<string> {
  const { runId, index } = env.request.data;
  const res = await ctx.store.withRunLease(runId, ctx.workerId, leaseMs, (lease) => processStep(runId, index, engine, lease));
  if (!res.ok) throw new RunBusy(`run ${runId} is busy (lease held by ${res.holder}); retrying`);
  return `step ${index} of ${runId} processed`;
}
