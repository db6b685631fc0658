import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config/load.js';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { startLab, type Lab } from '../../src/lab/harness.js';
import { postSigned, slashCommandBody, type SignedPostResult } from '../../src/lab/signed-requests.js';
import { createLogger } from '../../src/log.js';
import { startMedic, type Medic } from '../../src/runtime.js';

export interface MedicLab {
  lab: Lab;
  slack: FakeSlack;
  medic: Medic;
  config: Config;
  secret: string;
  eventsUrl: string;
  /** Everything the bot logged, for tests that search it. */
  logs: string[];
  /** A person typing `/etcd <text>` in a channel: a real signed request to the bot's receiver. */
  command(text: string, opts?: { user?: string; channel?: string }): Promise<SignedPostResult & { responseUrl: string }>;
  stop(): Promise<void>;
}

/** A lab (etcd, sshd, kubelet stand-in), a fake Slack and a real bot and worker wired to them. */
export async function startMedicLab(name: string, subnet: number): Promise<MedicLab> {
  const lab = await startLab({ root: join(inject('labRoot'), name), subnet });
  const slack = new FakeSlack();
  await slack.start();
  const secret = randomBytes(16).toString('hex');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig({
    ETCD_MEDIC_INVENTORY: lab.inventoryPath,
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: `t-${name}-${randomBytes(3).toString('hex')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    SLACK_BOT_TOKEN: `xoxb-test-${randomBytes(8).toString('hex')}`,
    SLACK_SIGNING_SECRET: secret,
    SLACK_API_URL: slack.apiUrl,
    LOG_LEVEL: 'info',
  });
  const medic = await startMedic(config, createLogger('info', sink), { bot: true, worker: true });
  const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
  let n = 0;
  return {
    lab,
    slack,
    medic,
    config,
    secret,
    eventsUrl,
    logs,
    async command(text, opts = {}) {
      const responseUrl = slack.responseUrl(`cmd-${++n}`);
      const body = slashCommandBody({ text, userId: opts.user ?? 'UALICE', channelId: opts.channel ?? 'CINCIDENT', responseUrl });
      return { ...(await postSigned(eventsUrl, secret, body)), responseUrl };
    },
    async stop() {
      await medic.stop();
      await slack.stop();
      await lab.stop();
    },
  };
}
