import type { Redis } from 'ioredis';

// Takes a lease if it is free or already ours, and (re)sets its expiry.
const LEASE = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** A short lease in Redis (one worker at a time does a job): true when `owner` holds `key` for the next `ms`. */
export async function takeLease(redis: Redis, key: string, owner: string, ms: number): Promise<boolean> {
  return ((await redis.eval(LEASE, 1, key, owner, String(ms))) as number) === 1;
}
