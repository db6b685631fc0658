import type { ClusterConfig, Inventory } from '../src/config/schema.js';
import { EtcdPool } from '../src/etcd/pool.js';
import type { LabStack } from '../src/lab/stack.js';
import { createLogger } from '../src/log.js';
import type { JobEnvelope } from '../src/queue/jobs.js';
import { SlackPoster } from '../src/slack/poster.js';
import { runStatus } from '../src/worker/jobs/status.js';
import { summarize, type Summary } from './stats.js';

/**
 * The status job with its certificate check and without it, on the same lab in
 * the same minute, interleaved so that load on the machine falls on both alike:
 * what reading every certificate beside the etcd view costs `/etcd status`.
 * Measured at the job (ask every member, read certificates, post), where the
 * difference lies; the end-to-end rows of the bench include the check as shipped.
 */
export async function statusCertCost(stack: LabStack, inventory: Inventory, cluster: ClusterConfig, n: number, label: string): Promise<{ withCerts: Summary; without: Summary; lines: number }> {
  const pool = new EtcdPool();
  const chat = new SlackPoster(stack.env.SLACK_BOT_TOKEN!, stack.slack.apiUrl, createLogger('silent'));
  const withCerts: number[] = [];
  const without: number[] = [];
  let lines = 0;
  try {
    for (let i = 0; i < n + 2; i++) {
      for (const certCheck of [true, false]) {
        const env: JobEnvelope & { request: { name: 'status' } } = {
          request: { name: 'status', data: { cluster: cluster.name } },
          requestId: `bench-${label}-${i}-${certCheck}`,
          userId: 'UBENCH',
          channelId: `CBSC${label.toUpperCase()}`,
          requestedAt: new Date().toISOString(),
        };
        const t0 = performance.now();
        const report = await runStatus(env, { inventory, pool, chat, certCheck });
        const ms = performance.now() - t0;
        if (certCheck && report.warnings.some((w) => w.includes('/etcd certs'))) lines++;
        if (i < 2) continue; // the first two warm up connections and JIT
        (certCheck ? withCerts : without).push(ms);
      }
    }
  } finally {
    await pool.close();
  }
  return { withCerts: summarize(withCerts), without: summarize(without), lines };
}
