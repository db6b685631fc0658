import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitFor } from '../src/lab/proc.js';
import { freePort } from '../src/lab/redis.js';

export interface BotProcess {
  child: ChildProcess;
  port: number;
  eventsUrl: string;
  /** What the process wrote (logs at LOG_LEVEL), for an error message when it dies. */
  out: string[];
  stop(): Promise<void>;
}

/**
 * The bot as production runs it: a process of its own (`npm run bot`, or the
 * built `dist/src/main.js bot` with BENCH_BOT=dist), apart from the worker and
 * the lab, so that its acks are timed on an event loop that does nothing else.
 */
export async function startBotProcess(env: Record<string, string>, nodeArgs: string[] = []): Promise<BotProcess> {
  const port = await freePort();
  const built = 'dist/src/main.js';
  const useDist = process.env.BENCH_BOT === 'dist';
  if (useDist && !existsSync(built)) throw new Error(`BENCH_BOT=dist: ${built} is missing; run npm run build first`);
  const args = [...nodeArgs, ...(useDist ? [built, 'bot'] : ['--import', 'tsx', 'src/main.ts', 'bot'])];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const died = exited.then(() => {
    throw new Error(`the bot exited (${child.exitCode ?? child.signalCode}) before it answered: ${out.join('').slice(-1000)}`);
  });
  await Promise.race([waitFor('the bot process to answer /healthz', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 30_000, 100), died]).catch((err: Error) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    child,
    port,
    eventsUrl: `http://127.0.0.1:${port}/slack/events`,
    out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const late = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(late);
    },
  };
}
