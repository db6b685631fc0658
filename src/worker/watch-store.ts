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

/** The last state the proactive watch posted, per cluster, in Redis (shared by every worker). */
export class WatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(cluster: string): string {
    return `${this.prefix}:watch:${cluster}`;
  }

  /**
   * Keeps `next` as the cluster's state. `changed` is false when its fingerprint
   * was already kept (someone else posts it, or posted it before); `prev` is what
   * was kept before, null for nothing.
   */
  async swap(cluster: string, next: Kept): Promise<{ changed: boolean; prev: Kept | null }> {
    const [changed, f, s] = (await this.redis.eval(SWAP, 1, this.key(cluster), next.fingerprint, next.state)) as [number, string, string];
    return { changed: changed === 1, prev: f ? { fingerprint: f, state: s } : null };
  }

  /** Puts `prev` back while `next` is still the one kept, so that the next look posts the change again. */
  async undo(cluster: string, next: Kept, prev: Kept | null): Promise<void> {
    await this.redis.eval(UNDO, 1, this.key(cluster), next.fingerprint, prev?.fingerprint ?? '', prev?.state ?? '');
  }
}
