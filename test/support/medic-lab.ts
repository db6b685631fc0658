import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config/load.js';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { startLab, type Lab, type LabOptions } from '../../src/lab/harness.js';
import { startRedis, type LabRedis } from '../../src/lab/redis.js';
import { blockActionsBody, postSigned, slashCommandBody, type SignedPostResult } from '../../src/lab/signed-requests.js';
import { createLogger } from '../../src/log.js';
import { startMedic, type Medic } from '../../src/runtime.js';

export interface MedicLab {
  lab: Lab;
  slack: FakeSlack;
  /** The lab's own Redis, when asked for. */
  redis: LabRedis | null;
  medic: Medic;
  config: Config;
  /** The environment the bot was configured from: a worker process started with it joins the same queue. */
  env: Record<string, string>;
  secret: string;
  eventsUrl: string;
  /** Everything the bot logged, for tests that search it. */
  logs: string[];
  /** A person typing `/etcd <text>` in a channel: a real signed request to the bot's receiver. */
  command(text: string, opts?: { user?: string; channel?: string }): Promise<SignedPostResult & { responseUrl: string }>;
  /** A person clicking a button: a real signed block_actions payload. */
  click(p: { user: string; channel?: string; messageTs: string; actionId: string; blockId: string; value: string }): Promise<SignedPostResult & { responseUrl: string }>;
  stop(): Promise<void>;
}

/** A lab (etcd, sshd, kubelet stand-in), a fake Slack and a real bot and worker wired to them. */
export interface MedicLabOptions {
  /** Replaces workspace.roles in the lab's inventory (the lab allows everyone by default). */
  roles?: Partial<Record<'read' | 'operate' | 'destroy' | 'approve', string[]>>;
  /** Merged into the inventory's backups section (schedule, keep, channel). */
  backups?: Record<string, unknown>;
  /** Any other change to the lab's inventory before the bot reads it (a fault to inject). */
  editInventory?: (inventory: Record<string, any>) => void;
  /** Use a Redis of this lab's own (a test that restarts Redis must not take the others' down). */
  ownRedis?: boolean;
  /** Start only the bot in this process (workers then run as separate processes). */
  botOnly?: boolean;
  /** Lab options beyond root and subnet (etcd on other ports). */
  lab?: Omit<LabOptions, 'root' | 'subnet'>;
  /** LOG_LEVEL of the bot and worker in this process (default info). */
  logLevel?: string;
  /** More of the bot's environment (SLACK_APP_TOKEN: Socket Mode). */
  env?: Record<string, string>;
  /** Runs once the fake Slack is up, before the bot starts (a Socket Mode stand-in joins it here). */
  withSlack?: (slack: FakeSlack) => Promise<void>;
}

export async function startMedicLab(name: string, subnet: number, opts: MedicLabOptions = {}): Promise<MedicLab> {
  const lab = await startLab({ ...opts.lab, root: join(inject('labRoot'), name), subnet });
  {
    const inv = parseYaml(readFileSync(lab.inventoryPath, 'utf8')) as { workspace: { roles: Record<string, string[]>; teamId?: string }; backups: Record<string, unknown> };
    // The lab's signed requests come from team TLAB: the bot refuses any other.
    inv.workspace.teamId = 'TLAB';
    inv.workspace.roles = { ...inv.workspace.roles, ...opts.roles };
    inv.backups = { ...inv.backups, ...opts.backups };
    opts.editInventory?.(inv);
    writeFileSync(lab.inventoryPath, stringify(inv));
  }
  const slack = new FakeSlack();
  await slack.start();
  const redis = opts.ownRedis ? await startRedis(join(lab.opts.root, 'redis')) : null;
  const secret = randomBytes(16).toString('hex');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const env: Record<string, string> = {
    ETCD_MEDIC_INVENTORY: lab.inventoryPath,
    REDIS_URL: redis?.url ?? inject('redisUrl'),
    QUEUE_PREFIX: `t-${name}-${randomBytes(3).toString('hex')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    SLACK_BOT_TOKEN: `xoxb-test-${randomBytes(8).toString('hex')}`,
    SLACK_SIGNING_SECRET: secret,
    SLACK_API_URL: slack.apiUrl,
    LOG_LEVEL: opts.logLevel ?? 'info',
    // Bot and every worker process of this lab sign and check with the same key.
    ETCD_MEDIC_HMAC_KEY: randomBytes(32).toString('hex'),
    ...opts.env,
  };
  await opts.withSlack?.(slack);
  const config = loadConfig(env);
  const medic = await startMedic(config, createLogger(env.LOG_LEVEL, sink), { bot: true, worker: !opts.botOnly });
  const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
  let n = 0;
  const t: MedicLab = {
    lab,
    slack,
    redis,
    medic,
    config,
    env,
    secret,
    eventsUrl,
    logs,
    async command(text, opts = {}) {
      const responseUrl = slack.responseUrl(`cmd-${++n}`);
      const body = slashCommandBody({ text, userId: opts.user ?? 'UALICE', channelId: opts.channel ?? 'CINCIDENT', responseUrl });
      return { ...(await postSigned(eventsUrl, secret, body)), responseUrl };
    },
    async click(p) {
      const responseUrl = slack.responseUrl(`click-${++n}`);
      const body = blockActionsBody({ ...p, userId: p.user, channelId: p.channel ?? 'CINCIDENT', responseUrl });
      return { ...(await postSigned(eventsUrl, secret, body)), responseUrl };
    },
    async stop() {
      await medic.stop();
      await slack.stop();
      await lab.stop();
      // `this.redis`: a test may have restarted the lab's Redis and put the new one here.
      await t.redis?.stop();
    },
  };
  return t;
}
