import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config/load.js';
import { EtcdPool } from '../src/etcd/pool.js';
import { startLabStack } from '../src/lab/stack.js';
import { viewCluster } from '../src/worker/cluster-view.js';
import { certTargets, readEachTarget } from '../src/certs/targets.js';
import { listedMembers } from '../src/certs/check.js';
import { statusCertReadings } from '../src/certs/status-check.js';
import { KubeCluster } from '../src/kube/client.js';
import { listPendingCsrs } from '../src/kube/csrs.js';
import { decodeCsrRequest } from '../src/kube/csr-decode.js';
import { csrsOfNodes } from '../src/kube/node-csrs.js';
import { diagnosedStatus, statusPendingCsrs } from '../src/worker/status-diagnosis.js';
import { filePendingCsrs } from './status-certs.js';
import { summarize } from './stats.js';

/**
 * `BENCH_ONLY=status-parts`: where the time of a status job with its certificates and pending
 * CSRs goes, each part timed apart on the same lab (with the Kubernetes stand-in, and
 * `pendingCsrs` bootstrap CSRs pending): wall time, and the CPU time of this process, which is
 * what the parts mostly cost. The lab's Kubernetes API, kubelets and Slack run in this process
 * too, so their side of a handshake or a list counts here; etcd runs in its own processes.
 */
export async function statusParts(root: string, subnet: number, o: { runs: number; pendingCsrs: number }, log: (s: string) => void): Promise<void> {
  const stack = await startLabStack(root, subnet, log, { kube: true });
  const config = loadConfig({ ...process.env, ...stack.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' });
  const cluster = config.inventory.clusters[0]!;
  const pool = new EtcdPool();
  const rows = new Map<string, number[]>();
  const add = (k: string, v: number) => rows.set(k, [...(rows.get(k) ?? []), v]);
  let unfile: (() => Promise<void>) | null = null;
  try {
    await stack.lab.waitHealthy();
    unfile = await filePendingCsrs(stack, o.pendingCsrs);
    const done = await viewCluster(cluster, pool);
    const all = certTargets(cluster, listedMembers(done.report)).targets;
    const kinds = [...new Set(all.map((t) => t.kind))];
    const tls = cluster.etcd.tls!;
    const k = KubeCluster.forCluster(cluster, { timeoutMs: cluster.etcd.callTimeoutMs });
    const pending = await listPendingCsrs(k);
    const names = cluster.members.map((m) => m.name);
    for (let i = 0; i < o.runs + 2; i++) {
      // The first two warm up connections and JIT.
      const timed = async (what: string, fn: () => unknown) => {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await fn();
        const ms = performance.now() - t0;
        const c = process.cpuUsage(c0);
        if (i < 2) return;
        add(`${what}|wall`, ms);
        add(`${what}|cpu`, (c.user + c.system) / 1000);
      };
      await timed('view alone', () => viewCluster(cluster, pool));
      await timed('status: view + certificates + CSRs', () => diagnosedStatus(cluster, viewCluster(cluster, pool)));
      await timed('status: view alone (extras: false)', () => diagnosedStatus(cluster, viewCluster(cluster, pool), { extras: false }));
      await timed('certificates (view already done)', () => statusCertReadings(cluster, Promise.resolve(done)));
      await timed('pending CSRs (view already done)', () => statusPendingCsrs(cluster, Promise.resolve(done)));
      for (const kind of kinds) {
        const ts = all.filter((t) => t.kind === kind);
        await timed(`  ${ts.length} ${kind} handshake(s) at once`, () => Promise.all(readEachTarget(cluster, ts, { timeoutMs: 2000 })));
      }
      await timed('  etcd TLS context from its files', () => createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), ca: readFileSync(tls.ca) }));
      await timed('  CSR list, new connection', () => listPendingCsrs(KubeCluster.forCluster(cluster, { timeoutMs: cluster.etcd.callTimeoutMs })));
      await timed('  CSR list, kept connection', () => listPendingCsrs(KubeCluster.forCluster(cluster, { timeoutMs: cluster.etcd.callTimeoutMs, keepAlive: true })));
      await timed(`  decode ${pending.length} requests once each`, () => pending.forEach((c) => decodeCsrRequest(c.spec.request)));
      await timed(`  ${pending.length} CSRs to ${names.length} masters (remembered)`, () => csrsOfNodes(pending, names));
    }
    console.log(`\nstatus job parts (${o.runs} runs each; ${pending.length} pending CSRs; ${all.length} certificates: ${kinds.map((kd) => `${all.filter((t) => t.kind === kd).length} ${kd}`).join(', ')})`);
    console.log(`${'what'.padEnd(48)} ${'wall med'.padStart(8)} ${'wall p99'.padStart(8)} | ${'cpu med'.padStart(8)} ${'cpu p99'.padStart(8)}`);
    for (const what of new Set([...rows.keys()].map((key) => key.split('|')[0]!))) {
      const w = summarize(rows.get(`${what}|wall`)!);
      const c = summarize(rows.get(`${what}|cpu`)!);
      console.log(`${what.padEnd(48)} ${w.median.toFixed(1).padStart(8)} ${w.p99.toFixed(1).padStart(8)} | ${c.median.toFixed(1).padStart(8)} ${c.p99.toFixed(1).padStart(8)}`);
    }
  } finally {
    await unfile?.();
    await pool.close();
    await stack.stop();
  }
}
