import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { portOpen } from './harness.js';
import { waitFor } from './proc.js';

export interface LabRedis {
  url: string;
  port: number;
  process: ChildProcess;
  /** Graceful: SIGTERM, Redis writes what it has and exits. */
  stop(): Promise<void>;
  /** A crash: SIGKILL, nothing flushed on the way out. */
  kill(): Promise<void>;
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A real redis-server of our own, persisted as the README asks of production: the append-only
 * file, fsynced on every write (`appendfsync always`), so whatever Redis acknowledged survives
 * even a SIGKILL or a power cut.
 */
export async function startRedis(dir: string, port?: number): Promise<LabRedis> {
  mkdirSync(dir, { recursive: true });
  const p = port ?? (await freePort());
  const proc = spawn(
    'redis-server',
    ['--port', String(p), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--logfile', `${dir}/redis.log`],
    { stdio: 'ignore' },
  );
  await waitFor(`redis on port ${p}`, () => portOpen('127.0.0.1', p), 10_000, 50);
  const end = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    process: proc,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}
