import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { takeLease } from '../queue/lease.js';
import { maskSecrets } from '../secrets/mask.js';
import { checkChain, entryHash, GENESIS, headSignature, type ChainCheck } from './chain.js';

export interface Incident {
  id: string; // inc-<8 hex>
  channelId: string;
  title: string;
  openedBy: string;
  openedAt: string;
  closedAt?: string;
  closedBy?: string;
  /** The root message in the channel; the timeline is mirrored into its thread. */
  rootTs?: string;
}

export type EntryKind = 'incident' | 'command' | 'denied' | 'plan' | 'approval' | 'rejection' | 'step' | 'state' | 'note' | 'run';

/**
 * What the runbook engine leaves on the timeline around a destructive step: that
 * it started under an approval, and that it ended. Signed with the entry, so a
 * Redis writer cannot remove it (the chain shows a cut) nor write one; the engine
 * reads these before a destructive step runs (src/approvals/replay.ts).
 */
export interface StepMark {
  /** Index of the step in its run (the entry's runId). */
  step: number;
  what: 'start' | 'end';
  /** The approval signature the step ran under: one approval, one run of the step. */
  approval: string;
  outcome?: 'done' | 'skipped' | 'failed' | 'interrupted';
}

export interface TimelineEntry {
  seq: number;
  at: string;
  kind: EntryKind;
  actor: string; // a Slack user ID, or "bot"
  text: string;
  runId?: string;
  /** Only the engine writes one (never a note or a click): see StepMark. */
  mark?: StepMark;
  /** The hash of the entry before (64 zeros for the first): an edit anywhere breaks the chain from there on. */
  prev: string;
  /** HMAC over the incident, this entry's content and `prev` (see chain.ts). */
  hash: string;
}

// Appends only if the chain's head is still the one the entry was hashed against
// and the chain has the length it was numbered for; writes the signed head with it.
const APPEND = `
local head = redis.call('GET', KEYS[2]) or '${GENESIS}'
if head ~= ARGV[1] then return 0 end
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[5]) - 1 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4])
return 1`;

/**
 * Incidents and their timelines, in Redis (run it with persistence): one open
 * incident per channel; each timeline an append-only list whose entries are
 * chained by HMAC (the key is never in Redis), so that an edit, a deletion or a
 * consistent rewrite by someone without the key is detectable. Text is masked
 * for secrets before it is written.
 */
export class IncidentStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly hmacKey: string,
  ) {
    if (!hmacKey) throw new Error('IncidentStore needs the HMAC key (ETCD_MEDIC_HMAC_KEY)');
  }

  private k = {
    open: (channel: string) => `${this.prefix}:incident:open:${channel}`,
    history: (channel: string) => `${this.prefix}:incident:history:${channel}`,
    incident: (id: string) => `${this.prefix}:incident:${id}`,
    timeline: (id: string) => `${this.prefix}:timeline:${id}`,
    head: (id: string) => `${this.prefix}:timeline:${id}:head`,
    headSig: (id: string) => `${this.prefix}:timeline:${id}:headsig`,
    mirrored: (id: string) => `${this.prefix}:timeline:${id}:mirrored`,
    openSet: () => `${this.prefix}:incidents:open`,
  };

  async current(channelId: string): Promise<Incident | null> {
    const id = await this.redis.get(this.k.open(channelId));
    return id ? this.get(id) : null;
  }

  async get(id: string): Promise<Incident | null> {
    const raw = await this.redis.get(this.k.incident(id));
    return raw ? (JSON.parse(raw) as Incident) : null;
  }

  /** The open incident of the channel, or the last one closed there. */
  async latest(channelId: string): Promise<Incident | null> {
    const open = await this.current(channelId);
    if (open) return open;
    const id = await this.redis.lindex(this.k.history(channelId), -1);
    return id ? this.get(id) : null;
  }

  /** Opens an incident unless one is open in the channel; returns it and whether it is new. */
  async open(channelId: string, title: string, by: string, now = new Date()): Promise<{ incident: Incident; created: boolean }> {
    const clean = maskSecrets(title);
    const inc: Incident = { id: `inc-${randomBytes(4).toString('hex')}`, channelId, title: clean, openedBy: by, openedAt: now.toISOString() };
    const ok = await this.redis.set(this.k.open(channelId), inc.id, 'NX');
    if (ok !== 'OK') return { incident: (await this.current(channelId))!, created: false };
    // The first entry before the record: an incident that can be read always has a timeline.
    await this.append(inc.id, { kind: 'incident', actor: by, text: `Incident opened: ${clean}` }, now);
    await this.redis.multi().set(this.k.incident(inc.id), JSON.stringify(inc)).rpush(this.k.history(channelId), inc.id).sadd(this.k.openSet(), inc.id).exec();
    return { incident: inc, created: true };
  }

  async setRoot(id: string, ts: string): Promise<void> {
    const inc = await this.get(id);
    if (inc && !inc.rootTs) await this.redis.set(this.k.incident(id), JSON.stringify({ ...inc, rootTs: ts }));
  }

  async close(channelId: string, by: string, now = new Date()): Promise<Incident | null> {
    const inc = await this.current(channelId);
    if (!inc) return null;
    await this.append(inc.id, { kind: 'incident', actor: by, text: 'Incident closed' }, now);
    const closed = { ...inc, closedAt: now.toISOString(), closedBy: by };
    await this.redis.multi().set(this.k.incident(inc.id), JSON.stringify(closed)).del(this.k.open(channelId)).exec();
    return closed;
  }

  /** Appends an entry, chained to the one before; retries if another writer appended first. */
  async append(id: string, e: { kind: EntryKind; actor: string; text: string; runId?: string; mark?: StepMark }, now = new Date()): Promise<TimelineEntry> {
    for (let attempt = 0; attempt < 100; attempt++) {
      // Another writer got in first: back off a little, at random, so that busy writers take turns.
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
      // Head and length as one consistent pair (the entry is numbered and linked from them).
      const res = await this.redis.multi().get(this.k.head(id)).llen(this.k.timeline(id)).exec();
      const head = res?.[0]?.[1] as string | null;
      const len = Number(res?.[1]?.[1] ?? 0);
      const body: Omit<TimelineEntry, 'hash'> = { seq: len + 1, at: now.toISOString(), kind: e.kind, actor: e.actor, text: maskSecrets(e.text).slice(0, 4000), prev: head ?? GENESIS };
      if (e.runId) body.runId = e.runId;
      if (e.mark) body.mark = e.mark;
      const entry: TimelineEntry = { ...body, hash: entryHash(this.hmacKey, id, body) };
      const headSig = `${entry.seq}:${headSignature(this.hmacKey, id, entry.seq, entry.hash)}`;
      const ok = (await this.redis.eval(APPEND, 3, this.k.timeline(id), this.k.head(id), this.k.headSig(id), entry.prev, entry.hash, JSON.stringify(entry), headSig, String(entry.seq))) as number;
      if (ok === 1) return entry;
    }
    throw new Error(`timeline ${id}: too many concurrent appends`);
  }

  async entries(id: string, fromSeq = 1): Promise<TimelineEntry[]> {
    return (await this.redis.lrange(this.k.timeline(id), fromSeq - 1, -1)).map((s) => JSON.parse(s) as TimelineEntry);
  }

  /**
   * The timeline and the check of its chain, read in one atomic step (MULTI):
   * an entry appended meanwhile (the `/etcd timeline` command's own) is either
   * wholly in the read or wholly out of it, never half, so an untouched chain
   * never reads as broken.
   */
  async readVerified(id: string): Promise<{ entries: TimelineEntry[]; chain: ChainCheck }> {
    const res = await this.redis.multi().lrange(this.k.timeline(id), 0, -1).get(this.k.head(id)).get(this.k.headSig(id)).get(this.k.mirrored(id)).exec();
    if (!res) throw new Error(`timeline ${id}: the read was aborted`);
    for (const [err] of res) if (err) throw err;
    const [list, head, headSig, mirrored] = res.map(([, v]) => v) as [string[], string | null, string | null, string | null];
    const entries: TimelineEntry[] = [];
    for (const [i, raw] of list.entries()) {
      try {
        entries.push(JSON.parse(raw) as TimelineEntry);
      } catch {
        return { entries, chain: { ok: false, seq: i + 1, reason: `entry ${i + 1} is not a timeline entry (it was overwritten)` } };
      }
    }
    return { entries, chain: checkChain(this.hmacKey, id, { entries, head, headSig, mirrored: Number(mirrored ?? 0) }) };
  }

  /** Checks every link of the chain and its signed head; names the first entry that does not hold. */
  async verify(id: string): Promise<{ ok: true; count: number } | { ok: false; seq: number; reason: string }> {
    const { chain } = await this.readVerified(id);
    return chain.ok ? { ok: true, count: chain.count } : chain;
  }

  /** The last incident in the channel's history whose record is gone (deleted in Redis), if any. */
  async deletedLatest(channelId: string): Promise<string | null> {
    const id = await this.redis.lindex(this.k.history(channelId), -1);
    return id && !(await this.redis.exists(this.k.incident(id))) ? id : null;
  }

  /** Entry `seq` (1-based), or null. */
  async entryAt(id: string, seq: number): Promise<TimelineEntry | null> {
    const raw = await this.redis.lindex(this.k.timeline(id), seq - 1);
    return raw ? (JSON.parse(raw) as TimelineEntry) : null;
  }

  /** Open incidents whose timelines may have entries not yet mirrored to Slack. */
  openIds(): Promise<string[]> {
    return this.redis.smembers(this.k.openSet());
  }

  async mirroredUpTo(id: string): Promise<number> {
    return Number((await this.redis.get(this.k.mirrored(id))) ?? 0);
  }

  async setMirrored(id: string, seq: number): Promise<void> {
    await this.redis.set(this.k.mirrored(id), String(seq));
  }

  /** Once a closed incident is fully mirrored, the mirror stops looking at it. */
  async doneMirroring(id: string): Promise<void> {
    await this.redis.srem(this.k.openSet(), id);
  }

  /** A short lease, renewed by its holder each tick, so that one worker at a time mirrors an incident. */
  async leaseMirror(id: string, owner: string, ms: number): Promise<boolean> {
    return takeLease(this.redis, `${this.k.mirrored(id)}:lease`, owner, ms);
  }
}
