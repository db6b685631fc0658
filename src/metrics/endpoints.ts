import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { liveWorkers } from '../worker/heartbeat.js';
import { registry } from './registry.js';

/**
 * The HTTP endpoints every process answers, for the orchestrator and for
 * Prometheus: `/healthz` (the process is alive), `/readyz` (Redis answers, and
 * for the bot a worker is alive), `/metrics`. The bot serves them beside Slack's
 * route; a worker-only process has them on a listener of its own.
 */

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

export function healthEndpoint(_req: IncomingMessage, res: ServerResponse): void {
  json(res, 200, { ok: true });
}

/** 503 when Redis does not answer (or, with needWorker, no worker's heartbeat is fresh); each check bounded. */
export function readyEndpoint(redis: Redis, prefix: string, opts: { needWorker: boolean }) {
  return async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const [redisOk, workers] = await Promise.all([
      withTimeout(redis.ping().then(() => true, () => false), 2000, false),
      withTimeout(liveWorkers(redis, prefix).catch(() => 0), 2000, 0),
    ]);
    const ok = redisOk && (!opts.needWorker || workers > 0);
    json(res, ok ? 200 : 503, { ok, redis: redisOk ? 'up' : 'down', workers });
  };
}

export async function metricsEndpoint(_req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(text);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`metrics could not be collected: ${(err as Error).message}\n`);
  }
}

/** The endpoints on a listener of their own: a worker process without the bot. Resolves with the bound port. */
export async function startOpsServer(redis: Redis, prefix: string, port: number, host: string): Promise<{ server: Server; port: number }> {
  const ready = readyEndpoint(redis, prefix, { needWorker: false });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') return json(res, 405, { error: 'GET only' });
    if (path === '/healthz') return healthEndpoint(req, res);
    if (path === '/readyz') return void ready(req, res);
    if (path === '/metrics') return void metricsEndpoint(req, res);
    json(res, 404, { error: 'not found: /healthz, /readyz and /metrics are served here' });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : port };
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(timer));
}
