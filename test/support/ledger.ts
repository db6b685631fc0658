import { checkChain, entryHash, GENESIS, headSignature } from '../../src/incident/chain.js';
import type { TimelineEntry } from '../../src/incident/store.js';
import type { StepLedger } from '../../src/runbook/engine.js';

/**
 * A StepLedger over one in-memory timeline, chained and checked with the real
 * chain functions (so a test can cut or edit it as a Redis writer would). It
 * starts, as every incident does, with its "opened" entry.
 */
export function memoryLedger(key: string, incidentId = 'inc-0000test') {
  const entries: TimelineEntry[] = [];
  // Head and its signature are kept apart from the entries, as in Redis: cutting entries leaves them as they were.
  let head: string | null = null;
  let headSig: string | null = null;
  const append = (e: Omit<TimelineEntry, 'seq' | 'prev' | 'hash' | 'at'>) => {
    const seq = entries.length + 1;
    const body: Omit<TimelineEntry, 'hash'> = { seq, at: new Date(Date.UTC(2026, 10, 27, 1, 0, seq)).toISOString(), ...e, prev: entries[entries.length - 1]?.hash ?? GENESIS };
    const hash = entryHash(key, incidentId, body);
    entries.push({ ...body, hash });
    head = hash;
    headSig = `${seq}:${headSignature(key, incidentId, seq, hash)}`;
  };
  append({ kind: 'incident', actor: 'UALICE', text: 'Incident opened: test' });
  let failWrites: string | null = null;
  const ledger: StepLedger = {
    async read(run) {
      if (!run.incidentId) return null;
      return { incidentId, entries: structuredClone(entries), chain: checkChain(key, incidentId, { entries, head, headSig, mirrored: 0 }) };
    },
    async mark(run, mark, text) {
      if (failWrites) throw new Error(failWrites);
      append({ kind: 'step', actor: 'bot', text, runId: run.runId, mark });
    },
  };
  return {
    ledger,
    /** An entry of the run that is not a mark: a thread line, as the run's notifier records each (or, with `actor`, a person's). */
    note: (runId: string, text: string, actor = 'bot') => append({ kind: actor === 'bot' ? 'step' : 'denied', actor, text, runId }),
    incidentId,
    entries,
    /** The fault: appends fail with this message (null: they work again). */
    failWrites: (why: string | null) => void (failWrites = why),
  };
}
