import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { canonical } from '../runbook/hash.js';

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

export interface TimelineEntry {
  seq: number;
  at: string;
  kind: EntryKind;
  actor: string; // a Slack user ID, or "bot"
  text: string;
  runId?: string;
  /** The hash of the entry before (64 zeros for the first): an edit anywhere breaks the chain from there on. */
  prev: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);

// Appends only if the chain's head is still the one the entry was hashed against.
const APPEND = `
local head = redis.call('GET', KEYS[2]) or '${GENESIS}'
if head ~= ARGV[1] then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
return 1`;

// Takes the lease if it is free or already ours, and (re)sets its expiry.
const LEASE = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

export function entryHash(e: Omit<TimelineEntry, 'hash'>): string {
  return createHash('sha256').update(canonical(e)).digest('hex');
}

/**
 * Incidents and their timelines, in Redis (run it with persistence): one open
 * incident per channel; each timeline an append-only list whose entries are
 * chained by hash, so that an edit or a deletion is detectable.
 */
export class IncidentStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private k = {
    open: (channel: string) => `${this.prefix}:incident:open:${channel}`,
    history: (channel: string) => `${this.prefix}:incident:history:${channel}`,
    incident: (id: string) => `${this.prefix}:incident:${id}`,
    timeline: (id: string) => `${this.prefix}:timeline:${id}`,
    head: (id: string) => `${this.prefix}:timeline:${id}:head`,
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
    const inc: Incident = { id: `inc-${randomBytes(4).toString('hex')}`, channelId, title, openedBy: by, openedAt: now.toISOString() };
    const ok = await this.redis.set(this.k.open(channelId), inc.id, 'NX');
    if (ok !== 'OK') return { incident: (await this.current(channelId))!, created: false };
    await this.redis.multi().set(this.k.incident(inc.id), JSON.stringify(inc)).rpush(this.k.history(channelId), inc.id).sadd(this.k.openSet(), inc.id).exec();
    await this.append(inc.id, { kind: 'incident', actor: by, text: `Incident opened: ${title}` }, now);
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
  async append(id: string, e: { kind: EntryKind; actor: string; text: string; runId?: string }, now = new Date()): Promise<TimelineEntry> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const [head, len] = await Promise.all([this.redis.get(this.k.head(id)), this.redis.llen(this.k.timeline(id))]);
      const body: Omit<TimelineEntry, 'hash'> = { seq: len + 1, at: now.toISOString(), kind: e.kind, actor: e.actor, text: e.text.slice(0, 4000), prev: head ?? GENESIS };
      if (e.runId) body.runId = e.runId;
      const entry: TimelineEntry = { ...body, hash: entryHash(body) };
      const ok = (await this.redis.eval(APPEND, 2, this.k.timeline(id), this.k.head(id), entry.prev, entry.hash, JSON.stringify(entry))) as number;
      if (ok === 1) return entry;
    }
    throw new Error(`timeline ${id}: too many concurrent appends`);
  }

  async entries(id: string, fromSeq = 1): Promise<TimelineEntry[]> {
    return (await this.redis.lrange(this.k.timeline(id), fromSeq - 1, -1)).map((s) => JSON.parse(s) as TimelineEntry);
  }

  /** Checks every link of the chain; names the first entry that does not hold. */
  async verify(id: string): Promise<{ ok: true; count: number } | { ok: false; seq: number; reason: string }> {
    const all = await this.entries(id);
    let prev = GENESIS;
    for (const [i, e] of all.entries()) {
      const { hash, ...body } = e;
      if (e.seq !== i + 1) return { ok: false, seq: i + 1, reason: `entry ${i + 1} says it is number ${e.seq}` };
      if (e.prev !== prev) return { ok: false, seq: e.seq, reason: `entry ${e.seq} does not follow the one before it` };
      if (entryHash(body) !== hash) return { ok: false, seq: e.seq, reason: `entry ${e.seq} was changed after it was written` };
      prev = hash;
    }
    const head = (await this.redis.get(this.k.head(id))) ?? GENESIS;
    if (head !== prev) return { ok: false, seq: all.length, reason: 'entries were removed from the end' };
    return { ok: true, count: all.length };
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
    const got = (await this.redis.eval(LEASE, 1, `${this.k.mirrored(id)}:lease`, owner, String(ms))) as number;
    return got === 1;
  }
}
