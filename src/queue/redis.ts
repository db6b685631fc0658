import { Redis } from 'ioredis';

/**
 * A Redis connection for BullMQ. Workers need maxRetriesPerRequest: null so a
 * blocking call survives a Redis restart instead of failing the job in hand.
 */
export function connectRedis(url: string, opts: { forWorker?: boolean } = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: opts.forWorker ? null : 3,
    enableReadyCheck: true,
    lazyConnect: false,
  });
}
