import { loadConfig } from './config/load.js';
import { ConfigError } from './errors.js';
import { createLogger } from './log.js';
import { startMedic } from './runtime.js';

/**
 * Entry point. `all` runs bot and worker in one process, `bot` and `worker` run
 * them apart. With no Slack workspace configured, `all` starts the playground:
 * the lab, a local Slack stand-in, and a web page that plays the incident channel.
 */
async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'all';
  if (!['all', 'bot', 'worker'].includes(mode)) {
    console.error(`unknown mode "${mode}": use all, bot or worker`);
    process.exit(2);
  }
  const log = createLogger();

  if (!process.env.SLACK_BOT_TOKEN) {
    if (mode !== 'all') {
      console.error('SLACK_BOT_TOKEN is not set. Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (see README), or run `npm start` for the local playground.');
      process.exit(2);
    }
    // A production build (the image) has no lab in it and never starts one: it runs against Slack or not at all.
    if (process.env.NODE_ENV === 'production') {
      console.error('SLACK_BOT_TOKEN is not set. This build runs only against a Slack workspace: set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and ETCD_MEDIC_INVENTORY (see README). The local playground runs from a checkout: npm ci && npm start.');
      process.exit(2);
    }
    // A specifier the compiler does not follow: the build for the image leaves the playground (and the lab) out.
    const playground = './playground/run.js';
    const { runPlayground } = (await import(playground)) as { runPlayground(): Promise<void> };
    await runPlayground();
    return;
  }

  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`configuration error:\n${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const medic = await startMedic(config, log, { bot: mode !== 'worker', worker: mode !== 'bot' });
  let signals = 0;
  const shutdown = (sig: string) => {
    if (++signals > 1) process.exit(1); // a second signal means: now
    log.info({ sig }, 'shutting down: finishing the job in hand');
    medic.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err: (err as Error).message }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
