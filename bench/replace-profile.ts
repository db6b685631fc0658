import { loadConfig } from '../src/config/load.js';
import type { LabPlatform } from '../src/lab/layouts.js';
import { startLabStack, type LabStack } from '../src/lab/stack.js';
import { createLogger } from '../src/log.js';
import { startMedic } from '../src/runtime.js';
import { botReplace, fillDb } from './replace.js';
import { summarize, type Summary } from './stats.js';

/**
 * The replace on a lab of one profile's own, the bot (two approvals) and the
 * profile's by-hand script taking turns on m3 with a broken disk, on `fillMb`
 * of data. Returns the row: bot durations, script durations.
 */
export async function profileReplaceBench(
  platform: LabPlatform,
  script: (stack: LabStack, member: string) => Promise<number>,
  root: string,
  subnet: number,
  o: { runs: number; fillMb: number },
  log: (s: string) => void,
): Promise<{ row: [string, Summary, Summary]; keys: number }> {
  const stack = await startLabStack(root, subnet, log, { platform });
  try {
    const config = loadConfig({ ...process.env, ...stack.env, PORT: '0', HOST: '127.0.0.1', QUEUE_PREFIX: `bench-${platform}`, LOG_LEVEL: 'silent' });
    const medic = await startMedic(config, createLogger('silent'), { bot: true, worker: true });
    try {
      const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
      const keys = await fillDb(config.inventory.clusters[0]!, o.fillMb);
      const bot: number[] = [];
      const byHand: number[] = [];
      for (let i = 0; i < o.runs; i++) {
        await stack.lab.corruptMember('m3');
        bot.push(await botReplace(stack, eventsUrl, 'm3'));
        await stack.lab.waitHealthy();
        await stack.lab.corruptMember('m3');
        byHand.push(await script(stack, 'm3'));
        await stack.lab.waitHealthy();
      }
      return { row: [`replace m3, ${platform} (${o.fillMb} MB)`, summarize(bot), summarize(byHand)], keys };
    } finally {
      await medic.stop();
    }
  } finally {
    await stack.stop();
  }
}
