import { describe, expect, it } from 'vitest';
import { replayProblem } from '../../src/approvals/replay.js';
import { checkChain, entryHash, GENESIS, headSignature } from '../../src/incident/chain.js';
import type { IncidentStore, TimelineEntry } from '../../src/incident/store.js';
import type { Run } from '../../src/runbook/types.js';
import { timelineLedger } from '../../src/worker/step-ledger.js';

const KEY = 'l'.repeat(64);
const INC = 'inc-0000roll';

/** One incident's timeline as Redis holds it (list, head, head signature), appended and read with the real chain functions. */
function redisTimeline() {
  let s = { entries: [] as TimelineEntry[], head: null as string | null, headSig: null as string | null };
  const append: IncidentStore['append'] = async (id, e) => {
    const seq = s.entries.length + 1;
    const body: Omit<TimelineEntry, 'hash'> = { seq, at: new Date(Date.UTC(2026, 10, 27, 2, 0, seq)).toISOString(), ...e, prev: s.head ?? GENESIS };
    const entry = { ...body, hash: entryHash(KEY, id, body) };
    s = { entries: [...s.entries, entry], head: entry.hash, headSig: `${seq}:${headSignature(KEY, id, seq, entry.hash)}` };
    return entry;
  };
  const readVerified: IncidentStore['readVerified'] = async (id) => ({ entries: structuredClone(s.entries), chain: checkChain(KEY, id, { ...s, mirrored: 0 }) });
  return {
    store: { append, readVerified },
    /** What a Redis writer can copy, and later put back: every key of the timeline as it is now. */
    copy: () => structuredClone(s),
    restore: (c: typeof s) => void (s = structuredClone(c)),
  };
}

const run = { runId: 'r-0000roll', incidentId: INC, records: [{ status: 'approved', approvalSig: 'sig-1', approvedBy: 'UBOB', approvedAt: 'T' }] } as unknown as Run;

describe('the step ledger and a timeline put back whole to an earlier state', () => {
  it('refuses the step: the start and end it hides were seen by this worker', async () => {
    const tl = redisTimeline();
    await tl.store.append(INC, { kind: 'incident', actor: 'UALICE', text: 'Incident opened' });
    const ledger = timelineLedger(tl.store);
    expect(replayProblem(run, 0, await ledger.read(run))).toBeNull();
    // The fault, part 1: a Redis writer copies the timeline before the step starts.
    const before = tl.copy();
    await ledger.mark(run, { step: 0, what: 'start', approval: 'sig-1' }, 'started');
    await ledger.mark(run, { step: 0, what: 'end', approval: 'sig-1', outcome: 'done' }, 'ended');
    // Part 2: the copy is put back (list, head and signature: a signed state), so the chain verifies.
    tl.restore(before);
    expect((await tl.store.readVerified(INC)).chain.ok).toBe(true);
    const seen = await ledger.read(run);
    expect(seen!.chain).toEqual({ ok: false, seq: 1, reason: 'it holds 1 entries where this worker already saw 3: it was put back to an earlier state' });
    expect(replayProblem(run, 0, seen)).toContain(`the timeline of incident ${INC} does not verify (it holds 1 entries where this worker already saw 3`);
  });

  it('takes a timeline that only grew, from this worker or another, as it is', async () => {
    const tl = redisTimeline();
    await tl.store.append(INC, { kind: 'incident', actor: 'UALICE', text: 'Incident opened' });
    const ledger = timelineLedger(tl.store);
    await ledger.mark(run, { step: 0, what: 'start', approval: 'sig-1' }, 'started');
    await tl.store.append(INC, { kind: 'note', actor: 'UCAROL', text: 'a note from the channel' });
    const read = await ledger.read(run);
    expect(read!.chain).toMatchObject({ ok: true, count: 3 });
  });
});
