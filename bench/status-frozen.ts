import { loadConfig } from '../src/config/load.js';
import { postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import { waitForStatusAnswer } from '../src/lab/slack-view.js';
import { startLabStack, type LabStack } from '../src/lab/stack.js';
import { createLogger } from '../src/log.js';
import { startMedic } from '../src/runtime.js';
import { printTable, summarize, type Summary } from './stats.js';

/** What issue 13 asks of `/etcd status` with two members frozen, from the command: a first message and the verdict. */
const GOAL_FIRST_MS = 500;
const GOAL_VERDICT_MS = 2500;
const goal = (ms: number): Summary => ({ n: 1, min: ms, median: ms, p99: ms });

/** SIGSTOP: the members hang with their ports open (a stuck host); the returned function thaws them and waits for a healthy cluster. */
function freeze(stack: LabStack, names: string[]): () => Promise<void> {
  const pids = names.map((n) => stack.lab.host(n).supervisor.pid()!);
  for (const p of pids) process.kill(p, 'SIGSTOP');
  return async () => {
    for (const p of pids) process.kill(p, 'SIGCONT');
    await stack.lab.waitHealthy();
  };
}

/**
 * `BENCH_ONLY=status-frozen`: `/etcd status` right after two of three members froze, each run on a
 * fresh bot and worker (no etcd connection open yet: the first status of an incident). Measured from
 * the signed command to the fake Slack's record of the first message and of the verdict (the redraw
 * of that message), beside the goals and beside `etcdctl endpoint status` on the same frozen lab.
 */
export async function statusFrozenBench(root: string, subnet: number, runs: number, log: (s: string) => void): Promise<void> {
  const stack = await startLabStack(root, subnet, log);
  const first: number[] = [];
  const verdict: number[] = [];
  const etcdctl: number[] = [];
  const verdicts = new Set<string>();
  try {
    await stack.lab.waitHealthy();
    for (let i = 0; i < runs; i++) {
      const config = loadConfig({ ...process.env, ...stack.env, PORT: '0', HOST: '127.0.0.1', QUEUE_PREFIX: `bench-frozen-${i}`, LOG_LEVEL: 'silent' });
      const medic = await startMedic(config, createLogger('silent'), { bot: true, worker: true });
      const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
      try {
        const thaw = freeze(stack, ['m2', 'm3']);
        try {
          const channel = `CBFROZEN${i}`;
          const since = stack.slack.lastSeq;
          const t0 = Date.now();
          const res = await postSigned(eventsUrl, stack.secret, slashCommandBody({ text: 'status', userId: 'UBENCH', channelId: channel, responseUrl: stack.slack.responseUrl(`frozen-${i}`) }));
          if (res.status !== 200) throw new Error(`ack ${res.status}`);
          const answer = await waitForStatusAnswer(stack.slack, 'lab', 30_000, since);
          if (answer.first.body.channel !== channel) throw new Error(`an answer in ${String(answer.first.body.channel)}, not ${channel}`);
          first.push(answer.first.at - t0);
          verdict.push(answer.final.at - t0);
          verdicts.add(String(answer.final.body.text).split('.')[0]!);
          // The same fault, the same moment: what an operator gets by hand.
          const e0 = performance.now();
          await stack.lab.etcdctl(['endpoint', 'status', '--command-timeout=2s', '--dial-timeout=2s'], stack.lab.endpoints, true);
          etcdctl.push(performance.now() - e0);
        } finally {
          await thaw();
        }
      } finally {
        await medic.stop();
      }
    }
  } finally {
    await stack.stop();
  }
  const rows: [string, Summary, Summary][] = [
    ['2 frozen, cold: first message', summarize(first), goal(GOAL_FIRST_MS)],
    ['2 frozen, cold: verdict', summarize(verdict), goal(GOAL_VERDICT_MS)],
    ['2 frozen, cold: verdict vs etcdctl', summarize(verdict), summarize(etcdctl)],
  ];
  printTable(`status with two of three members frozen (SIGSTOP), each run a fresh worker (ms from the command; base = the goal, ${GOAL_FIRST_MS} ms to a first message and ${GOAL_VERDICT_MS} ms to the verdict, or \`etcdctl endpoint status\` on the same frozen lab; ratio = median / base median)`, rows);
  console.log(`verdicts seen: ${[...verdicts].join(', ')} (the lab's per-call deadline: 2 s)`);
}
