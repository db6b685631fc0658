import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ClusterParams, NewHost } from './layouts.js';
import { run, waitFor } from './proc.js';

/**
 * Every master's data dir as a freshly bootstrapped cluster leaves it: one
 * empty snapshot (from a throwaway etcd on the first host's address, plain
 * HTTP, gone before the members start) restored on each host with the
 * cluster's initial cluster and token. For pods that never bootstrap a cluster
 * themselves (4.4+'s etcd-pod.yaml: state existing, initial cluster discovered).
 */
export async function bootstrapDataDirs(hosts: NewHost[], c: ClusterParams): Promise<void> {
  const first = hosts[0]!;
  const work = join(dirname(first.root), '..', 'seed');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const url = `http://${first.ip}:${c.clientPort}`;
  const peer = `http://${first.ip}:${c.peerPort}`;
  const etcd = spawn('etcd', ['--name=seed', `--data-dir=${join(work, 'etcd')}`, `--listen-client-urls=${url}`, `--advertise-client-urls=${url}`, `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=seed=${peer}`, '--logger=zap', '--log-outputs=stderr'], { stdio: 'ignore' });
  const exited = new Promise((r) => etcd.once('exit', r));
  const env = { ...process.env, ETCDCTL_API: '3' };
  const snapshot = join(work, 'empty.db');
  try {
    await waitFor('the seed etcd to answer', async () => (await run('etcdctl', [`--endpoints=${url}`, '--dial-timeout=1s', 'endpoint', 'health'], { env, allowFail: true, timeoutMs: 5000 })).code === 0, 15_000, 100);
    await run('etcdctl', [`--endpoints=${url}`, 'snapshot', 'save', snapshot], { env, timeoutMs: 15_000 });
  } finally {
    etcd.kill('SIGKILL');
    await exited;
  }
  for (const h of hosts) {
    rmSync(h.dataDir, { recursive: true, force: true });
    await run('etcdctl', ['snapshot', 'restore', snapshot, `--name=${h.name}`, `--initial-cluster=${c.initialCluster}`, `--initial-cluster-token=${c.token}`, `--initial-advertise-peer-urls=${h.peerUrl}`, `--data-dir=${h.dataDir}`], { env, timeoutMs: 15_000 });
  }
}
