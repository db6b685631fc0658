import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkChain, entryHash, GENESIS, headSignature, type ChainSnapshot } from '../../src/incident/chain.js';
import type { TimelineEntry } from '../../src/incident/store.js';
import { canonical } from '../../src/runbook/hash.js';

const KEY = 'k'.repeat(64);
const ID = 'inc-0badc0de';

/** A chain of `n` entries as the store writes it, with its signed head. */
function chain(n: number, key = KEY, id = ID): ChainSnapshot {
  const entries: TimelineEntry[] = [];
  let prev = GENESIS;
  for (let i = 1; i <= n; i++) {
    const body = { seq: i, at: `2026-11-26T01:00:${String(i).padStart(2, '0')}.000Z`, kind: i === 1 ? 'incident' : 'note', actor: 'UALICE', text: `entry ${i}`, prev } as const;
    const e = { ...body, hash: entryHash(key, id, body) };
    entries.push(e);
    prev = e.hash;
  }
  return { entries, head: prev, headSig: `${n}:${headSignature(key, id, n, prev)}`, mirrored: 0 };
}

/** Re-links a chain after an edit, as someone would who can write Redis but has no key (sha256, or a key of their own). */
function relink(s: ChainSnapshot, hash: (id: string, body: Omit<TimelineEntry, 'hash'>) => string): ChainSnapshot {
  let prev = GENESIS;
  const entries = s.entries.map((e, i) => {
    const { hash: _old, ...rest } = e;
    const body = { ...rest, seq: i + 1, prev };
    const out = { ...body, hash: hash(ID, body) };
    prev = out.hash;
    return out;
  });
  return { ...s, entries, head: prev };
}

describe('the timeline hash chain', () => {
  it('holds for an untouched chain and names its length and head', () => {
    const s = chain(5);
    expect(checkChain(KEY, ID, s)).toEqual({ ok: true, count: 5, head: s.entries[4]!.hash });
  });

  it('is an HMAC: the same chain checked with another key, or moved to another incident, does not hold', () => {
    expect(checkChain('x'.repeat(64), ID, chain(3))).toMatchObject({ ok: false, seq: 1, reason: expect.stringContaining('changed after it was written') });
    expect(checkChain(KEY, 'inc-other', chain(3))).toMatchObject({ ok: false, seq: 1 });
  });

  it('detects an edited entry', () => {
    const s = chain(4);
    s.entries[1] = { ...s.entries[1]!, text: 'nothing happened here' };
    expect(checkChain(KEY, ID, s)).toEqual({ ok: false, seq: 2, reason: 'entry 2 was changed after it was written (its signature does not match)' });
  });

  it('detects a consistent rewrite of the whole chain by someone without the key', () => {
    const s = chain(4);
    s.entries[2] = { ...s.entries[2]!, text: 'approved by nobody' };
    // Every link recomputed the old way (sha256 of the content), head moved along.
    const plain = relink(s, (_id, body) => createHash('sha256').update(canonical(body)).digest('hex'));
    expect(checkChain(KEY, ID, plain)).toMatchObject({ ok: false, seq: 1 });
    // Every link recomputed with a key of the attacker's own, head and its signature too.
    const own = relink(s, (id, body) => entryHash('attacker'.repeat(8), id, body));
    own.headSig = `4:${headSignature('attacker'.repeat(8), ID, 4, own.head!)}`;
    expect(checkChain(KEY, ID, own)).toMatchObject({ ok: false, seq: 1, reason: expect.stringContaining('signature does not match') });
  });

  it('detects a deleted entry in the middle and reordered entries', () => {
    const s = chain(5);
    s.entries.splice(2, 1);
    expect(checkChain(KEY, ID, s)).toMatchObject({ ok: false, seq: 3, reason: expect.stringContaining('says it is number 4') });
    const r = chain(3);
    [r.entries[1], r.entries[2]] = [r.entries[2]!, r.entries[1]!];
    expect(checkChain(KEY, ID, r)).toMatchObject({ ok: false, seq: 2 });
  });

  it('detects entries cut off the end, even with the head moved back to the new last entry', () => {
    const s = chain(6);
    const cut = { ...s, entries: s.entries.slice(0, 4) };
    expect(checkChain(KEY, ID, cut)).toEqual({ ok: false, seq: 4, reason: 'entries were removed from the end (the head says 6 entries, 4 are left)' });
    // The head rewritten to entry 4's hash: its signature was made for 6 entries and another hash.
    expect(checkChain(KEY, ID, { ...cut, head: s.entries[3]!.hash })).toMatchObject({ ok: false, reason: "the chain's head was rewritten (its signature does not match)" });
    expect(checkChain(KEY, ID, { ...cut, head: s.entries[3]!.hash, headSig: `4:${'0'.repeat(64)}` })).toMatchObject({ ok: false, reason: "the chain's head was rewritten (its signature does not match)" });
  });

  it('detects entries cut off that were already posted to the thread', () => {
    // Even with the head of an earlier, shorter chain replayed: the thread had seen more.
    const short = chain(3);
    expect(checkChain(KEY, ID, { ...short, mirrored: 5 })).toEqual({ ok: false, seq: 3, reason: 'entries were removed from the end (5 were already posted to the incident thread, 3 are left)' });
  });

  it('detects a deleted chain and a deleted head', () => {
    expect(checkChain(KEY, ID, { entries: [], head: null, headSig: null, mirrored: 0 })).toMatchObject({ ok: false, seq: 0, reason: expect.stringContaining('its entries were deleted') });
    expect(checkChain(KEY, ID, { ...chain(2), head: null, headSig: null })).toEqual({ ok: false, seq: 2, reason: "the chain's head is missing: it was deleted" });
  });
});
