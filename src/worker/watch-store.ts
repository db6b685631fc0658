import type { Redis } from 'ioredis';

// Swaps the kept state for the new one in one step, unless its fingerprint is already the one kept:
// of two workers that look at the same time and see the same change, only the first is told to post it.
const SWAP = `
local old = redis.call('HMGET', KEYS[1], 'f', 's')
if old[1] == ARGV[1] then return {0, '', ''} end
redis.call('HSET', KEYS[1], 'f', ARGV[1], 's', ARGV[2])
return {1, old[1] or '', old[2] or ''}
`;

// Puts the previous state back if the post failed, unless another look has replaced it meanwhile.
const UNDO = `
if redis.call('HGET', KEYS[1], 'f') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('HSET', KEYS[1], 'f', ARGV[2], 's', ARGV[3]) end
return 1
`;

export interface Kept {
  fingerprint: string;
  state: string;
}

/**
 * The last state the proactive watch posted, per cluster and channel, in Redis
 * (shared by every worker). Per channel: a watch moved to another channel tells
 * the new one what is wrong now, rather than keep quiet about what only the old one heard.
 */
export class WatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(cluster: string, channel: string): string {
    return `${this.prefix}:watch:${cluster}:${channel}`;
  }

  /**
   * Keeps `next` as the cluster's state. `changed` is false when its fingerprint
   * was already kept (someone else posts it, or posted it before); `prev` is what
   * was kept before, null for nothing.
   */
  async swap(cluster: string, channel: string, next: Kept): Promise<{ changed: boolean; prev: Kept | null }> {
    const [changed, f, s] = (await this.redis.eval(SWAP, 1, this.key(cluster, channel), next.fingerprint, next.state)) as [number, string, string];
    return { changed: changed === 1, prev: f ? { fingerprint: f, state: s } : null };
  }

  /** Puts `prev` back while `next` is still the one kept, so that the next look posts the change again. */
  async undo(cluster: string, channel: string, next: Kept, prev: Kept | null): Promise<void> {
    await this.redis.eval(UNDO, 1, this.key(cluster, channel), next.fingerprint, prev?.fingerprint ?? '', prev?.state ?? '');
  }

  /** Forgets what the watch of a cluster posted, on every channel (its watch was turned off or the cluster dropped). */
  async forget(cluster: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.key(cluster, '*')}`, 'COUNT', 100);
      if (keys.length) await this.redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
}
