import type { Logger } from '../log.js';
import type { EntryKind, IncidentStore } from './store.js';

export type Recorder = (channelId: string, e: { kind: EntryKind; actor: string; text: string; runId?: string }) => Promise<void>;

/**
 * Adds to the channel's open incident, if there is one. A failure is logged,
 * never fatal to the work it records.
 */
export function recorder(store: IncidentStore, log: Logger): Recorder {
  return async (channelId, e) => {
    try {
      const inc = await store.current(channelId);
      if (inc) await store.append(inc.id, e);
    } catch (err) {
      log.error({ channel: channelId, err: (err as Error).message }, 'could not write to the timeline');
    }
  };
}
