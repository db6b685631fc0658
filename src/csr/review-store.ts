import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CsrOutcome, CsrReview } from './review.js';

/** A drawn CSR message stays decidable this long; an older click is told to ask again. */
const REVIEW_TTL_S = 7 * 24 * 3600;
/** The watch's memory of the CSRs it posted to an incident outlives any incident. */
const POSTED_TTL_S = 30 * 24 * 3600;

// Deletes a key only if it still holds our value (a lease we own).
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The CSR messages the bot drew (what each showed, and what became of each row
 * since), and what the incident watch already posted. In Redis, so any worker
 * can decide a click on a message another worker drew, and a watch that moves
 * to another worker does not post a CSR twice.
 */
export class CsrReviewStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private k = {
    review: (id: string) => `${this.prefix}:csr:review:${id}`,
    outcomes: (id: string) => `${this.prefix}:csr:review:${id}:outcomes`,
    version: (id: string) => `${this.prefix}:csr:review:${id}:version`,
    posted: (incidentId: string) => `${this.prefix}:csr:posted:${incidentId}`,
    watchLease: (cluster: string) => `${this.prefix}:csr:watch:${cluster}:lease`,
  };

  newId(): string {
    return `cr-${randomBytes(4).toString('hex')}`;
  }

  async save(review: CsrReview): Promise<void> {
    await this.redis.set(this.k.review(review.id), JSON.stringify(review), 'EX', REVIEW_TTL_S);
  }

  async get(id: string): Promise<CsrReview | null> {
    const raw = await this.redis.get(this.k.review(id));
    return raw ? (JSON.parse(raw) as CsrReview) : null;
  }

  async setTs(id: string, ts: string): Promise<void> {
    const r = await this.get(id);
    if (r) await this.save({ ...r, ts });
  }

  async outcomes(id: string): Promise<Record<string, CsrOutcome>> {
    const all = await this.redis.hgetall(this.k.outcomes(id));
    return Object.fromEntries(Object.entries(all).map(([name, v]) => [name, JSON.parse(v) as CsrOutcome]));
  }

  /** Records what became of rows, and bumps the version a redraw checks against. */
  async setOutcomes(id: string, outcomes: Record<string, CsrOutcome>): Promise<void> {
    if (Object.keys(outcomes).length === 0) return;
    const fields = Object.entries(outcomes).flatMap(([name, o]) => [name, JSON.stringify(o)]);
    await this.redis
      .multi()
      .hset(this.k.outcomes(id), ...fields)
      .expire(this.k.outcomes(id), REVIEW_TTL_S)
      .incr(this.k.version(id))
      .expire(this.k.version(id), REVIEW_TTL_S)
      .exec();
  }

  async version(id: string): Promise<number> {
    return Number((await this.redis.get(this.k.version(id))) ?? 0);
  }

  /**
   * Claims CSR uids for an incident's thread: returns those nobody posted there
   * yet. Claimed before posting, so two watchers (a lease handed over mid-wave)
   * cannot both post one; `unclaim` gives them back when the post failed.
   */
  async claimPosted(incidentId: string, uids: string[]): Promise<string[]> {
    if (uids.length === 0) return [];
    const key = this.k.posted(incidentId);
    const m = this.redis.multi();
    for (const u of uids) m.sadd(key, u);
    m.expire(key, POSTED_TTL_S);
    const res = (await m.exec()) ?? [];
    return uids.filter((_, i) => res[i]?.[1] === 1);
  }

  async unclaimPosted(incidentId: string, uids: string[]): Promise<void> {
    if (uids.length) await this.redis.srem(this.k.posted(incidentId), ...uids);
  }

  async wasPosted(incidentId: string, uid: string): Promise<boolean> {
    return (await this.redis.sismember(this.k.posted(incidentId), uid)) === 1;
  }

  watchLeaseKey(cluster: string): string {
    return this.k.watchLease(cluster);
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, key, owner);
  }
}
