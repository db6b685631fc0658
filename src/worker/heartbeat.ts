import type { Redis } from 'ioredis';

const EVERY_MS = 5000;
const TTL_S = 15;

export const heartbeatKey = (prefix: string, id: string) => `${prefix}:workers:${id}`;

/** Each worker refreshes a key with a TTL; /healthz counts the keys that are alive. */
export function startHeartbeat(redis: Redis, prefix: string, id: string) {
  const beat = () => redis.set(heartbeatKey(prefix, id), new Date().toISOString(), 'EX', TTL_S).catch(() => undefined);
  void beat();
  const timer = setInterval(beat, EVERY_MS);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    clear: () => redis.del(heartbeatKey(prefix, id)).then(() => undefined, () => undefined),
  };
}

export async function liveWorkers(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:workers:*`, 'COUNT', 100);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}
