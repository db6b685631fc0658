import type { Logger } from '../log.js';
import type { EntryKind, IncidentStore } from './store.js';

/** `incidentId`: the incident the entry belongs to (a run's, fixed at its start); without it, the channel's open incident. */
export type Recorder = (channelId: string, e: { kind: EntryKind; actor: string; text: string; runId?: string; incidentId?: string }) => Promise<void>;

/**
 * Adds to the given incident, or else to the channel's open incident if there
 * is one. A failure is logged, never fatal to the work it records.
 */
export function recorder(store: IncidentStore, log: Logger): Recorder {
  return async (channelId, { incidentId, ...e }) => {
    try {
      const id = incidentId ?? (await store.current(channelId))?.id;
      if (id) await store.append(id, e);
    } catch (err) {
      log.error({ channel: channelId, err: (err as Error).message }, 'could not write to the timeline');
    }
  };
}
