import { spawn } from 'node:child_process';
import type { FakeSlack } from '../src/lab/fake-slack.js';
import { run } from '../src/lab/proc.js';
import { isStatusVerdictIn } from '../src/lab/slack-view.js';

export interface BurstResult {
  /** Each request's time from the burst's start to its ack, ms. */
  acks: number[];
  /** Each request's time from the burst's start to its answer in the channel, ms (empty when not awaited). */
  done: number[];
}

/** Runs bench/burst-client.ts: `n` signed slash commands at once from a process of its own. */
async function fire(url: string, secret: string, n: number, channel: string, responseUrl: string): Promise<{ started: number; acks: number[] }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/burst-client.ts'], {
    env: { ...process.env, BURST_URL: url, BURST_SECRET: secret, BURST_N: String(n), BURST_CHANNEL: channel, BURST_RESPONSE_URL: responseUrl },
    timeoutMs: 120_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { started: number; acks: number[] };
}

/**
 * `n` concurrent `/etcd status` against the bot; completion is when the channel got each answer
 * (the Slack stand-in's clock, the same machine's as the client's).
 */
export async function burstAgainstBot(slack: FakeSlack, eventsUrl: string, secret: string, n: number, tag: string): Promise<BurstResult> {
  const since = slack.lastSeq;
  const channel = `CBURST${tag}`;
  const { started, acks } = await fire(eventsUrl, secret, n, channel, slack.responseUrl(`burst-${tag}-`));
  const done = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const c = `${channel}${i % 10}X${i}`;
      // The verdict, not a progress message posted before it (status shows what it knows when members are slow).
      const r = await slack.waitFor(isStatusVerdictIn(c), 120_000, since);
      return r.at - started;
    }),
  );
  return { acks, done };
}

/**
 * The floor under any ack: the same burst against a bare Node HTTP server in a process of its own
 * that reads each body and answers a fixed JSON ack, on the same machine in the same run.
 */
export async function burstAgainstBareServer(n: number): Promise<number[]> {
  const child = spawn(
    process.execPath,
    ['-e', `const s=require('http').createServer((q,r)=>{q.resume();q.on('end',()=>{r.writeHead(200,{'content-type':'application/json'});r.end('{"response_type":"ephemeral","text":"ok"}')})});s.listen(0,'127.0.0.1',()=>console.log(s.address().port))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
      child.once('exit', (code) => reject(new Error(`the bare server exited ${code}`)));
    });
    return (await fire(`http://127.0.0.1:${port}/slack/events`, 'x', n, 'CBARE', 'http://127.0.0.1:9/r')).acks;
  } finally {
    child.kill('SIGKILL');
  }
}
