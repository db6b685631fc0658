import type { ChainCheck } from '../incident/chain.js';
import type { IncidentStore } from '../incident/store.js';
import type { StepLedger } from '../runbook/engine.js';

/**
 * The engine's record of destructive steps, on the run's incident timeline (the
 * incident it started in, which its plan signature binds it to). Unlike the
 * recorder, a mark that cannot be written is an error: the step must not act
 * without it.
 *
 * The chain's head signature shows a cut end, but not a timeline put back
 * whole (entries, head and signature) as it was earlier: that is a signed
 * state too, and a Redis writer who kept a copy from before a step started can
 * restore it and so hide the step's start and end. This process remembers how
 * long it saw each timeline (read or written) and takes a shorter one as
 * rolled back. A restarted worker does not remember; nothing in Redis can.
 */
export function timelineLedger(incidents: Pick<IncidentStore, 'readVerified' | 'append'>): StepLedger {
  const seen = new Map<string, number>();
  const saw = (id: string, count: number) => {
    if (count > (seen.get(id) ?? 0)) seen.set(id, count);
  };
  return {
    async read(run) {
      if (!run.incidentId) return null;
      const id = run.incidentId;
      const { entries, chain } = await incidents.readVerified(id);
      const before = seen.get(id) ?? 0;
      let check: ChainCheck = chain;
      if (chain.ok && chain.count < before) {
        check = { ok: false, seq: chain.count, reason: `it holds ${chain.count} entries where this worker already saw ${before}: it was put back to an earlier state` };
      } else if (chain.ok) saw(id, chain.count);
      return { incidentId: id, entries, chain: check };
    },
    async mark(run, mark, text) {
      if (!run.incidentId) throw new Error(`run ${run.runId} names no incident to record its steps on`);
      const entry = await incidents.append(run.incidentId, { kind: 'step', actor: 'bot', text, runId: run.runId, mark });
      saw(run.incidentId, entry.seq);
    },
  };
}
