import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FakeSlack } from './fake-slack.js';
import { killLabProcesses, startLab, type Lab } from './harness.js';
import type { LabPlatform } from './layouts.js';
import { ensureLabPackages } from './packages.js';
import { startRedis, type LabRedis } from './redis.js';

export interface LabStack {
  lab: Lab;
  redis: LabRedis;
  slack: FakeSlack;
  secret: string;
  /** The environment that points the bot at this lab. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Everything the bot needs around it, all local: Redis, the etcd lab, and a Slack stand-in. */
export async function startLabStack(root: string, subnet: number, log: (s: string) => void, opts: { kube?: boolean; platform?: LabPlatform; etcdFlags?: string[] } = {}): Promise<LabStack> {
  await ensureLabPackages(log);
  // A new lab is a new cluster: runs and locks from an earlier lab would only mislead.
  rmSync(join(root, 'redis'), { recursive: true, force: true });
  const redis = await startRedis(join(root, 'redis'));
  let lab: Lab;
  const slack = new FakeSlack();
  try {
    lab = await startLab({ root: join(root, 'lab'), subnet, log, kube: opts.kube ?? false, platform: opts.platform ?? 'kubeadm', etcdFlags: opts.etcdFlags });
    await slack.start();
  } catch (err) {
    // A start that fails half way stops what it had started: no etcd, sshd or Redis is left running.
    killLabProcesses(join(root, 'lab'));
    await redis.stop();
    throw err;
  }
  const secret = randomBytes(16).toString('hex');
  const env = {
    ETCD_MEDIC_INVENTORY: lab.inventoryPath,
    REDIS_URL: redis.url,
    SLACK_BOT_TOKEN: `xoxb-lab-${randomBytes(8).toString('hex')}`,
    SLACK_SIGNING_SECRET: secret,
    SLACK_API_URL: slack.apiUrl,
  };
  return {
    lab,
    redis,
    slack,
    secret,
    env,
    async stop() {
      await slack.stop();
      await lab.stop();
      await redis.stop();
    },
  };
}
