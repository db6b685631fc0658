import type { Config } from './config/load.js';
import { inventoryWarnings } from './config/schema.js';
import type { Logger } from './log.js';
import { openQueue } from './queue/queue.js';
import { connectRedis } from './queue/redis.js';
import { registerSecrets } from './secrets/mask.js';
import { startBot, type Bot } from './slack/app.js';
import { SlackPoster } from './slack/poster.js';
import { startWorker, type MedicWorker } from './worker/worker.js';
import { liveWorkers } from './worker/heartbeat.js';
import { startOpsServer } from './metrics/endpoints.js';
import { watchQueue } from './metrics/registry.js';
import { activeRunsOf } from './metrics/observe.js';
import { RunStore } from './runbook/store.js';

export interface Medic {
  bot: Bot | null;
  worker: MedicWorker | null;
  /** The port of /healthz, /readyz and /metrics of a worker-only process (the bot serves them itself). */
  opsPort: number | null;
  /** Graceful: stop taking requests, let the worker finish (or release) its job, close connections. */
  stop(): Promise<void>;
}

/**
 * Starts the bot, the worker, or both in this process. `npm start` runs both;
 * `npm run bot` and `npm run worker` run them apart on the same Redis, so
 * workers scale out. Tests start it the same way.
 */
export async function startMedic(config: Config, log: Logger, parts: { bot: boolean; worker: boolean }): Promise<Medic> {
  const { settings, inventory } = config;
  // Everything written from here on (logs, Slack, the timeline) masks these.
  registerSecrets(settings.slack.botToken, settings.slack.appToken, settings.slack.signingSecret, settings.hmacKey, settings.redisPassword, redisUrlPassword(settings.redisUrl));
  if (settings.hmacKeyGenerated) log.warn('ETCD_MEDIC_HMAC_KEY is not set: using a key made for this process (a Slack stand-in is configured). Set it for a real workspace.');
  for (const w of inventoryWarnings(inventory)) log.warn({ inventory: settings.inventoryPath }, w);
  const auth = { password: settings.redisPassword, tlsCaFile: settings.redisTlsCaFile };
  const redis = connectRedis(settings.redisUrl, auth);
  const queue = openQueue(redis, settings.queuePrefix);
  const runs = new RunStore(redis, settings.queuePrefix);
  watchQueue({
    counts: () => queue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
    workers: () => liveWorkers(redis, settings.queuePrefix),
    activeRuns: () => activeRunsOf(runs),
  });
  let ops: Awaited<ReturnType<typeof startOpsServer>> | null = null;
  let worker: MedicWorker | null = null;
  let bot: Bot | null = null;
  const workerRedis = parts.worker ? connectRedis(settings.redisUrl, { forWorker: true, ...auth }) : null;
  try {
    if (workerRedis) {
      if (!settings.slack.botToken) throw new Error('SLACK_BOT_TOKEN is required for the worker to post answers');
      worker = await startWorker({
        inventory,
        redis: workerRedis,
        prefix: settings.queuePrefix,
        chat: new SlackPoster(settings.slack.botToken, settings.slack.apiUrl, log),
        log,
        concurrency: settings.workerConcurrency,
        lockMs: settings.workerLockMs,
        sweepMs: settings.sweepMs,
        hmacKey: settings.hmacKey,
        killAfter: settings.faultKillAfter,
      });
    }
    if (parts.bot) bot = await startBot({ settings, inventory, queue, redis, log });
    else ops = await startOpsServer(redis, settings.queuePrefix, settings.port, settings.host);
  } catch (err) {
    ops?.server.close();
    await worker?.close();
    await queue.close();
    redis.disconnect();
    workerRedis?.disconnect();
    throw err;
  }
  let stopping: Promise<void> | null = null;
  if (ops) log.info({ port: ops.port }, 'worker serves /healthz, /readyz and /metrics');
  return {
    bot,
    worker,
    opsPort: ops?.port ?? null,
    stop() {
      stopping ??= (async () => {
        await bot?.stop();
        ops?.server.closeAllConnections();
        await new Promise((r) => (ops ? ops.server.close(r) : r(undefined)));
        await worker?.close();
        await queue.close();
        await redis.quit().catch(() => undefined);
        await workerRedis?.quit().catch(() => undefined);
      })();
      return stopping;
    },
  };
}

function redisUrlPassword(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
