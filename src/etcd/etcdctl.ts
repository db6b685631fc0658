import { spawn } from 'node:child_process';

export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/**
 * `etcdctl snapshot status`: reads a snapshot's database offline (revision,
 * key count, hash). The worker needs etcdctl (Debian: etcd-client) for it.
 */
export function snapshotStatus(file: string, timeoutMs = 60_000, signal?: AbortSignal): Promise<SnapshotStatus> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(`etcdctl snapshot status not run: ${String((signal.reason as Error)?.message ?? 'stop requested')}`));
    const child = spawn('etcdctl', ['snapshot', 'status', file, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('close', () => signal?.removeEventListener('abort', onAbort));
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(e.message.includes('ENOENT') ? 'etcdctl is needed on the worker to verify snapshots (Debian package etcd-client)' : e.message));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`etcdctl snapshot status ${file}: ${(err || out).trim().split('\n').pop()}`));
      try {
        const j = JSON.parse(out) as SnapshotStatus;
        resolve({ hash: j.hash, revision: j.revision, totalKey: j.totalKey, totalSize: j.totalSize });
      } catch {
        reject(new Error(`etcdctl snapshot status printed no JSON: ${out.slice(0, 200)}`));
      }
    });
  });
}
