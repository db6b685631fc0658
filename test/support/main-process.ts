import { spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';

export interface MainProcess {
  child: ChildProcess;
  out: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `src/main.ts <mode>` as its own process, the way `npm run bot|worker` does. */
export function startMain(mode: string, env: Record<string, string>): MainProcess {
  return spawnMain(['--import', 'tsx', 'src/main.ts', mode], env);
}

/**
 * A worker process from the same sources bundled once for the test run (see
 * global-setup.ts): for tests that start one after every crash they cause.
 * startMain is the proof that `npm run worker` itself starts.
 */
export function startWorker(env: Record<string, string>): MainProcess {
  return spawnMain([inject('mainBundle'), 'worker'], env);
}

function spawnMain(args: string[], env: Record<string, string>): MainProcess {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, out, exit };
}
