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

const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/**
 * What a master rebuild or a wave of kubelet re-bootstraps leaves for status to list: `n`
 * client CSRs filed with the bootstrap token (so each names its node only inside its PKCS#10
 * request), pending. Resolves with a function that deletes them again.
 */
export async function filePendingCsrs(stack: LabStack, n: number): Promise<() => Promise<void>> {
  const kube = stack.lab.kube;
  if (!kube) throw new Error('pending CSRs need the lab with its Kubernetes stand-in');
  const names: string[] = [];
  const masters = stack.lab.hosts.map((h) => h.name);
  for (let i = 0; i < n; i++) {
    const csr = await kube.fileCsr({ as: 'bootstrap', subject: { cn: `system:node:${masters[i % masters.length]}`, o: ['system:nodes'] } });
    names.push(csr.metadata.name as string);
  }
  return async () => {
    for (const name of names) await kube.request('DELETE', `${CSR_PATH}/${name}`);
  };
}
