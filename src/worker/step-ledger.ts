import type { IncidentStore } from '../incident/store.js';
import type { StepLedger } from '../runbook/engine.js';

/**
 * The engine's record of destructive steps, on the run's incident timeline (the
 * incident it started in, which its plan signature binds it to). Unlike the
 * recorder, a mark that cannot be written is an error: the step must not act
 * without it.
 */
export function timelineLedger(incidents: IncidentStore): StepLedger {
  return {
    async read(run) {
      if (!run.incidentId) return null;
      const { entries, chain } = await incidents.readVerified(run.incidentId);
      return { incidentId: run.incidentId, entries, chain };
    },
    async mark(run, mark, text) {
      if (!run.incidentId) throw new Error(`run ${run.runId} names no incident to record its steps on`);
      await incidents.append(run.incidentId, { kind: 'step', actor: 'bot', text, runId: run.runId, mark });
    },
  };
}
