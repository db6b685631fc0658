import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisAuth {
  /** Redis AUTH password (REDIS_PASSWORD); overrides one in the URL. */
  password?: string;
  /** A private CA's certificate file for a rediss:// URL (REDIS_TLS_CA); else the system's CAs. */
  tlsCaFile?: string;
}

/**
 * A Redis connection for BullMQ. Workers need maxRetriesPerRequest: null so a
 * blocking call survives a Redis restart instead of failing the job in hand.
 * A rediss:// URL connects over TLS (the server's certificate is checked).
 */
export function connectRedis(url: string, opts: { forWorker?: boolean } & RedisAuth = {}): Redis {
  const options: RedisOptions = {
    maxRetriesPerRequest: opts.forWorker ? null : 3,
    enableReadyCheck: true,
    lazyConnect: false,
  };
  if (opts.password) options.password = opts.password;
  if (url.startsWith('rediss://')) {
    options.tls = { ...(opts.tlsCaFile ? { ca: readFileSync(opts.tlsCaFile) } : {}), rejectUnauthorized: true };
  }
  return new Redis(url, options);
}
