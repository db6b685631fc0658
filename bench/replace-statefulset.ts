import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { FakeSlack } from '../src/lab/fake-slack.js';
import { waitFor } from '../src/lab/proc.js';
import { startRedis } from '../src/lab/redis.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import { waitForGate, waitForRunStatus } from '../src/lab/slack-view.js';
import { startStatefulSetLab, type StatefulSetLab } from '../src/lab/statefulset/index.js';
import { createLogger } from '../src/log.js';
import { startMedic } from '../src/runtime.js';
import { fillDb } from './replace.js';
import { summarize, type Summary } from './stats.js';

const NS = 'user1';

/**
 * The seed's replace of a failed kube-etcd replica (seeds/gke-replace-failed-etcd-replica) as an
 * operator types it: kubectl against the admin cluster, etcdctl against the members that stay, each
 * command waited on before the next (the sequence of test/integration/statefulset.test.ts). No bot.
 */
export async function scriptReplaceStatefulSet(lab: StatefulSetLab, ordinal: number): Promise<number> {
  const pod = lab.podName(ordinal);
  const node = `admin-node-${ordinal + 1}`;
  const others = lab.endpoints.filter((_, i) => i !== ordinal);
  const k = (...args: string[]) => lab.kubectl(['-n', NS, ...args]);
  const json = async (...args: string[]) => JSON.parse((await k(...args, '-o', 'json')).stdout);
  const ready = (p: any) => (p?.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
  const t0 = performance.now();
  const pdb = await json('get', 'pdb', 'kube-etcd-pdb');
  await k('delete', 'pdb', 'kube-etcd-pdb');
  await lab.etcdctl(['snapshot', 'save', `${lab.opts.root}/bench-snapshot.db`], [others[0]!]);
  const args: string[] = (await json('get', 'sts', 'kube-etcd')).spec.template.spec.containers[0].args;
  const path = `/spec/template/spec/containers/0/args/${args.indexOf('--initial-cluster-state=new')}`;
  await k('patch', 'sts', 'kube-etcd', '--type=json', '-p', JSON.stringify([{ op: 'replace', path, value: '--initial-cluster-state=existing' }]));
  await lab.kubectl(['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=60s']);
  const id = (await lab.memberList()).find((m) => m.name === pod)!.id;
  await lab.etcdctl(['member', 'remove', id], others);
  const utility = `etcd-utility-bench-${ordinal}`;
  const spec = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: utility, namespace: NS },
    spec: {
      nodeName: node,
      restartPolicy: 'Never',
      containers: [{ name: 'utility', image: 'busybox', command: ['sh', '-c', `mv /var/lib/etcd/member /var/lib/etcd/member.bench-$(date +%s%N)`], volumeMounts: [{ name: 'data', mountPath: '/var/lib/etcd' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: `data-${pod}` } }],
    },
  };
  await lab.kubectl(['create', '--validate=false', '-f', '-'], { input: JSON.stringify(spec) });
  await waitFor('the utility pod Succeeded', async () => (await json('get', 'pod', utility)).status.phase === 'Succeeded', 60_000, 200);
  await k('delete', 'pod', utility);
  await lab.etcdctl(['member', 'add', pod, `--peer-urls=https://${lab.podIp(ordinal)}:2380`, '--learner'], others);
  await lab.kubectl(['uncordon', node]);
  await waitFor(`${pod} Ready`, async () => ready(await json('get', 'pod', pod)), 120_000, 200);
  const learner = (await lab.memberList()).find((m) => m.name === pod)!;
  await waitFor('the learner promoted', async () => (await lab.etcdctl(['member', 'promote', learner.id], others, true)).code === 0, 120_000, 200);
  await lab.waitHealthy(120_000);
  await k('patch', 'sts', 'kube-etcd', '--type=json', '-p', JSON.stringify([{ op: 'replace', path, value: '--initial-cluster-state=new' }]));
  for (const f of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields']) delete pdb.metadata[f];
  delete pdb.status;
  await lab.kubectl(['create', '--validate=false', '-f', '-'], { input: JSON.stringify(pdb) });
  return performance.now() - t0;
}

/**
 * The replace on a statefulset lab of its own: the bot (three approvals: the PDB's delete, the member's
 * remove, the wipe) against scriptReplaceStatefulSet, taking turns on kube-etcd-1 with a broken disk.
 */
export async function statefulsetReplaceBench(root: string, subnet: number, o: { runs: number; fillMb: number }, log: (s: string) => void): Promise<{ row: [string, Summary, Summary]; keys: number }> {
  // Beside the lab's root, which the lab wipes at its start.
  const redis = await startRedis(`${root}-redis`);
  const lab = await startStatefulSetLab({ root, subnet, log }).catch(async (err: Error) => {
    await redis.stop();
    throw err;
  });
  const slack = new FakeSlack();
  try {
    const inv = parse(readFileSync(lab.inventoryPath, 'utf8'));
    inv.workspace.teamId = 'TLAB';
    inv.workspace.roles = { read: ['*'], operate: ['*'], destroy: ['UALICE'], approve: ['UBOB'] };
    writeFileSync(lab.inventoryPath, stringify(inv));
    await slack.start();
    const secret = randomBytes(16).toString('hex');
    const config = loadConfig({
      ...process.env,
      ETCD_MEDIC_INVENTORY: lab.inventoryPath,
      REDIS_URL: redis.url,
      PORT: '0',
      HOST: '127.0.0.1',
      QUEUE_PREFIX: `bench-statefulset-${randomBytes(3).toString('hex')}`,
      SLACK_BOT_TOKEN: `xoxb-bench-${randomBytes(8).toString('hex')}`,
      SLACK_SIGNING_SECRET: secret,
      SLACK_API_URL: slack.apiUrl,
      LOG_LEVEL: 'silent',
    });
    const medic = await startMedic(config, createLogger('silent'), { bot: true, worker: true });
    try {
      const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
      const keys = await fillDb(config.inventory.clusters[0]!, o.fillMb);
      const bot: number[] = [];
      const byHand: number[] = [];
      for (let i = 0; i < o.runs; i++) {
        await lab.failReplica(1);
        bot.push(await botReplaceStatefulSet(slack, eventsUrl, secret, lab.podName(1), i));
        await lab.waitHealthy(120_000);
        await lab.failReplica(1);
        byHand.push(await scriptReplaceStatefulSet(lab, 1));
        await lab.waitHealthy(120_000);
      }
      return { row: [`replace kube-etcd-1, statefulset (${o.fillMb} MB)`, summarize(bot), summarize(byHand)], keys };
    } finally {
      await medic.stop();
    }
  } finally {
    await slack.stop();
    await lab.stop();
    await redis.stop();
  }
}

/** The whole replace through the bot: command, plan, three approvals by a second person, until DONE. */
async function botReplaceStatefulSet(slack: FakeSlack, eventsUrl: string, secret: string, member: string, round: number): Promise<number> {
  const t0 = performance.now();
  const since = slack.lastSeq;
  const channel = 'CBENCHSTS';
  await postSigned(eventsUrl, secret, slashCommandBody({ text: `replace ${member}`, userId: 'UALICE', channelId: channel, responseUrl: slack.responseUrl(`bench-sts-${round}`) }));
  const plan = await slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === channel && /^Replace/.test(String(r.body.text)), 60_000, since);
  // The gates of the plan: the PDB's delete (step 2), the member's remove (6), the wipe of its claim (7).
  for (const step of [1, 5, 6]) {
    const b = await waitForGate(slack, plan.ts!, step);
    await postSigned(eventsUrl, secret, blockActionsBody({ userId: 'UBOB', channelId: channel, messageTs: plan.ts!, actionId: 'medic_approve', blockId: b.blockId, value: b.approve, responseUrl: slack.responseUrl(`bench-sts-${round}-${step}`) }));
  }
  await waitForRunStatus(slack, plan.ts!, 'DONE', 300_000);
  return performance.now() - t0;
}
