import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonical } from '../runbook/hash.js';
import type { TimelineEntry } from './store.js';

export const GENESIS = '0'.repeat(64);

export type ChainCheck = { ok: true; count: number; head: string } | { ok: false; seq: number; reason: string };

const hmac = (key: string, text: string) => createHmac('sha256', key).update(text).digest('hex');

export function sameHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/**
 * An entry's link: an HMAC (key from the environment, never in Redis) over the
 * incident, the entry's canonical content and the hash before it. Whoever can
 * write Redis but lacks the key cannot rewrite the chain consistently.
 */
export function entryHash(key: string, incidentId: string, e: Omit<TimelineEntry, 'hash'>): string {
  return hmac(key, `timeline\n${incidentId}\n${canonical(e)}`);
}

/** The signed head: how long the chain is and its last hash, so that cutting entries off the end shows. */
export function headSignature(key: string, incidentId: string, count: number, head: string): string {
  return hmac(key, `head\n${incidentId}\n${count}\n${head}`);
}

/** Everything the check needs, read from Redis in one atomic step. */
export interface ChainSnapshot {
  entries: TimelineEntry[];
  /** The stored head hash, or null when the key is gone. */
  head: string | null;
  /** "<count>:<signature>" written with the head, or null. */
  headSig: string | null;
  /** Entries already posted to the incident's thread: the chain cannot be shorter. */
  mirrored: number;
}

/**
 * Checks every link of a timeline and its head; names the first entry that does
 * not hold. Pure: the caller reads entries, head and signature in one step, so an
 * append that lands meanwhile can never look like tampering.
 */
export function checkChain(key: string, incidentId: string, s: ChainSnapshot): ChainCheck {
  const { entries } = s;
  if (entries.length === 0) {
    return { ok: false, seq: 0, reason: 'the timeline is empty: every incident starts with its "opened" entry, so its entries were deleted' };
  }
  let prev = GENESIS;
  for (const [i, e] of entries.entries()) {
    const { hash, ...body } = e;
    if (e.seq !== i + 1) return { ok: false, seq: i + 1, reason: `entry ${i + 1} says it is number ${e.seq}: entries were removed or reordered` };
    if (e.prev !== prev) return { ok: false, seq: e.seq, reason: `entry ${e.seq} does not follow the one before it` };
    if (typeof hash !== 'string' || !sameHex(entryHash(key, incidentId, body), hash)) {
      return { ok: false, seq: e.seq, reason: `entry ${e.seq} was changed after it was written (its signature does not match)` };
    }
    prev = hash;
  }
  const n = entries.length;
  if (s.head === null || s.headSig === null) return { ok: false, seq: n, reason: "the chain's head is missing: it was deleted" };
  const [countText, sig] = s.headSig.split(':');
  const count = Number(countText);
  if (!sig || !Number.isInteger(count) || !sameHex(headSignature(key, incidentId, count, s.head), sig)) {
    return { ok: false, seq: n, reason: "the chain's head was rewritten (its signature does not match)" };
  }
  if (count !== n || s.head !== prev) return { ok: false, seq: n, reason: `entries were removed from the end (the head says ${count} entries, ${n} are left)` };
  if (s.mirrored > n) return { ok: false, seq: n, reason: `entries were removed from the end (${s.mirrored} were already posted to the incident thread, ${n} are left)` };
  return { ok: true, count: n, head: prev };
}
