import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import type { ClusterConfig } from '../src/config/schema.js';
import { loadConfig } from '../src/config/load.js';
import { openEndpoint } from '../src/etcd/pool.js';
import { run } from '../src/lab/proc.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import { waitForGate, waitForRunStatus } from '../src/lab/slack-view.js';
import { startLabStack, type LabStack } from '../src/lab/stack.js';
import { createLogger } from '../src/log.js';
import { startMedic } from '../src/runtime.js';
import { summarize, type Summary } from './stats.js';

/**
 * The fault: a few keys rewritten with 100 KB values, 20 at a time, until etcd refuses
 * ("database space exceeded"): the history fills the database, the live data stays small.
 */
async function fillUntilNospace(cluster: ClusterConfig): Promise<void> {
  const client = openEndpoint(cluster, cluster.etcd.endpoints[0]!, 10_000);
  const value = 'x'.repeat(100_000);
  try {
    for (let i = 0; i < 100_000; i += 20) {
      const tries = await Promise.allSettled(Array.from({ length: 20 }, (_, j) => client.put(`/bench/fill/${(i + j) % 50}`).value(value)));
      const bad = tries.find((r) => r.status === 'rejected');
      if (bad) {
        if (/database space exceeded/.test(String((bad as PromiseRejectedResult).reason))) return;
        throw (bad as PromiseRejectedResult).reason;
      }
    }
    throw new Error('the quota was never reached');
  } finally {
    client.close();
  }
}

/** What an operator types, by hand: find the leader and the revision, compact, defragment each follower then the leader (health between), disarm, write. */
async function scriptDefrag(stack: LabStack): Promise<number> {
  const lab = stack.lab;
  const tls = `--cacert=${lab.tls.ca} --cert=${lab.tls.cert} --key=${lab.tls.key}`;
  const all = lab.endpoints.join(',');
  const script = `
set -eu
export ETCDCTL_API=3
E="etcdctl ${tls}"
LEADER=""; FOLLOWERS=""
for ep in ${lab.endpoints.join(' ')}; do
  S=$($E --endpoints=$ep endpoint status -w json)
  ID=$(printf '%s' "$S" | grep -o '"member_id":[0-9]*' | cut -d: -f2)
  L=$(printf '%s' "$S" | grep -o '"leader":[0-9]*' | cut -d: -f2)
  if [ "$ID" = "$L" ]; then LEADER=$ep; REV=$(printf '%s' "$S" | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2); else FOLLOWERS="$FOLLOWERS $ep"; fi
done
[ -n "$LEADER" ] || { echo "no leader" >&2; exit 1; }
$E --endpoints=$LEADER compact $REV --physical >/dev/null
for ep in $FOLLOWERS $LEADER; do
  $E --endpoints=$ep --command-timeout=300s defrag >/dev/null
  until $E --endpoints=${all} endpoint health >/dev/null 2>&1; do sleep 0.2; done
done
$E --endpoints=$LEADER alarm disarm >/dev/null
$E --endpoints=$LEADER put /bench/write-check ok >/dev/null
$E --endpoints=$LEADER del /bench/write-check >/dev/null
`;
  const t0 = performance.now();
  await run('bash', ['-c', script], { timeoutMs: 600_000 });
  return performance.now() - t0;
}

/** The same through the bot: the command, the plan, the approval of the compaction by a second person, until DONE. */
async function botDefrag(stack: LabStack, eventsUrl: string, i: number): Promise<number> {
  const channel = `CBENCHDEFRAG${i}`;
  const t0 = performance.now();
  const since = stack.slack.lastSeq;
  await postSigned(eventsUrl, stack.secret, slashCommandBody({ text: 'defrag', userId: 'UALICE', channelId: channel, responseUrl: stack.slack.responseUrl(`bench-defrag-${i}`) }));
  const plan = await stack.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === channel && /^(Compact and defragment|\/etcd defrag)/.test(String(r.body.text)), 60_000, since);
  if (!/^Compact and defragment/.test(String(plan.body.text))) throw new Error(String(plan.body.text));
  const b = await waitForGate(stack.slack, plan.ts!, 0);
  await postSigned(eventsUrl, stack.secret, blockActionsBody({ userId: 'UBOB', channelId: channel, messageTs: plan.ts!, actionId: 'medic_approve', blockId: b.blockId, value: b.approve, responseUrl: stack.slack.responseUrl(`bench-defrag-click-${i}`) }));
  await waitForRunStatus(stack.slack, plan.ts!, 'DONE', 600_000);
  return performance.now() - t0;
}

/**
 * `BENCH_ONLY=defrag`: a lab whose members run with a `quotaMb` quota, filled to NOSPACE before each
 * run, recovered in turn by the bot and by the same steps typed as etcdctl commands.
 */
export async function defragBench(root: string, subnet: number, o: { runs: number; quotaMb: number }, log: (s: string) => void): Promise<{ row: [string, Summary, Summary]; note: string }> {
  const quota = o.quotaMb * 1024 * 1024;
  const stack = await startLabStack(root, subnet, log, { etcdFlags: [`--quota-backend-bytes=${quota}`] });
  const inv = parseYaml(readFileSync(stack.lab.inventoryPath, 'utf8')) as { clusters: { etcd: Record<string, unknown> }[] };
  inv.clusters[0]!.etcd.quotaBytes = quota;
  writeFileSync(stack.lab.inventoryPath, stringify(inv));
  const config = loadConfig({ ...process.env, ...stack.env, PORT: '0', HOST: '127.0.0.1', QUEUE_PREFIX: 'bench-defrag', LOG_LEVEL: 'silent' });
  const medic = await startMedic(config, createLogger('silent'), { bot: true, worker: true });
  const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
  const cluster = config.inventory.clusters[0]!;
  const bot: number[] = [];
  const script: number[] = [];
  try {
    // Interleaved, so that both see the same machine load.
    for (let i = 0; i < o.runs; i++) {
      await fillUntilNospace(cluster);
      script.push(await scriptDefrag(stack));
      await fillUntilNospace(cluster);
      bot.push(await botDefrag(stack, eventsUrl, i));
    }
  } finally {
    await medic.stop();
    await stack.stop();
  }
  return {
    row: ['defrag at NOSPACE, 3 members', summarize(bot), summarize(script)],
    note: `defrag: quota ${o.quotaMb} MB filled with 50 keys rewritten at 100 KB until NOSPACE before each run; the script finds the leader and revision (endpoint status), compacts --physical, defragments each follower then the leader with endpoint health between, disarms, puts and deletes a key; the bot's time includes planning and the approval click.`,
  };
}
