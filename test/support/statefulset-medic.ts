import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { blockActionsBody, postSigned, slashCommandBody, type SignedPostResult } from '../../src/lab/signed-requests.js';
import { startStatefulSetLab, type StatefulSetLab } from '../../src/lab/statefulset/index.js';
import { createLogger } from '../../src/log.js';
import { startMedic, type Medic } from '../../src/runtime.js';

/**
 * The StatefulSet lab (an admin cluster's API with etcd as kube-etcd pods), a fake
 * Slack and the real bot on the lab's inventory: alice plans, bob approves, everyone
 * reads and operates. As test/support/medic-lab.ts does for the SSH labs.
 */
export interface StatefulSetMedic {
  lab: StatefulSetLab;
  slack: FakeSlack;
  medic: Medic;
  /** The environment the bot was configured from: a worker process started with it joins the same queue. */
  env: Record<string, string>;
  /** A person typing `/etcd <text>` in the incident channel: a real signed request to the bot's receiver. */
  command(text: string, user?: string): Promise<SignedPostResult & { responseUrl: string }>;
  /** A person clicking a button in the incident channel: a real signed block_actions payload. */
  click(p: { user: string; messageTs: string; actionId: string; blockId: string; value: string }): Promise<SignedPostResult & { responseUrl: string }>;
  stop(): Promise<void>;
}

export interface StatefulSetMedicOptions {
  /** The inventory's drain bound for this file's runs. */
  drainTimeoutSeconds: number;
  /** Start only the bot here (workers then run as processes of their own, that a test can kill). */
  botOnly?: boolean;
  /** More of the bot's environment. */
  env?: Record<string, string>;
}

export async function startStatefulSetMedic(name: string, subnet: number, opts: StatefulSetMedicOptions): Promise<StatefulSetMedic> {
  const lab = await startStatefulSetLab({ root: join(inject('labRoot'), name), subnet });
  const inv = parse(readFileSync(lab.inventoryPath, 'utf8'));
  // The lab's signed requests come from team TLAB: the bot refuses any other.
  inv.workspace.teamId = 'TLAB';
  inv.workspace.roles = { read: ['*'], operate: ['*'], destroy: ['UALICE'], approve: ['UBOB'] };
  inv.clusters[0].platform.drainTimeoutSeconds = opts.drainTimeoutSeconds;
  writeFileSync(lab.inventoryPath, stringify(inv));
  const slack = new FakeSlack();
  try {
    await slack.start();
  } catch (err) {
    await lab.stop();
    throw err;
  }
  const secret = randomBytes(16).toString('hex');
  const env: Record<string, string> = {
    ETCD_MEDIC_INVENTORY: lab.inventoryPath,
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: `t-${name}-${randomBytes(3).toString('hex')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    SLACK_BOT_TOKEN: `xoxb-test-${randomBytes(8).toString('hex')}`,
    SLACK_SIGNING_SECRET: secret,
    SLACK_API_URL: slack.apiUrl,
    LOG_LEVEL: 'warn',
    ETCD_MEDIC_HMAC_KEY: randomBytes(32).toString('hex'),
    ...opts.env,
  };
  let medic: Medic;
  try {
    medic = await startMedic(loadConfig(env), createLogger(env.LOG_LEVEL), { bot: true, worker: !opts.botOnly });
  } catch (err) {
    // Nothing of a start that failed is left running for the next file.
    await slack.stop();
    await lab.stop();
    throw err;
  }
  const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
  let n = 0;
  return {
    lab,
    slack,
    medic,
    env,
    async command(text, user = 'UALICE') {
      const responseUrl = slack.responseUrl(`cmd-${++n}`);
      return { ...(await postSigned(eventsUrl, secret, slashCommandBody({ text, userId: user, channelId: 'CINCIDENT', responseUrl }))), responseUrl };
    },
    async click(p) {
      const responseUrl = slack.responseUrl(`click-${++n}`);
      return { ...(await postSigned(eventsUrl, secret, blockActionsBody({ ...p, userId: p.user, channelId: 'CINCIDENT', responseUrl }))), responseUrl };
    },
    async stop() {
      await medic.stop();
      await slack.stop();
      await lab.stop();
    },
  };
}
