import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { FakeSlack, type SlackRecord } from '../src/lab/fake-slack.js';
import { startLab } from '../src/lab/harness.js';
import { makeCsr } from '../src/lab/kube/pki.js';
import { ensureLabPackages } from '../src/lab/packages.js';
import { startRedis } from '../src/lab/redis.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import { latest, textOf } from '../src/lab/slack-view.js';
import { waitFor } from '../src/lab/proc.js';
import { createLogger } from '../src/log.js';
import { startMedic } from '../src/runtime.js';
import { summarize, type Summary } from './stats.js';

const CSRS = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const CHANNEL = 'CBENCHCSR';

/**
 * The CSR cases, on a lab of their own with the Kubernetes API stand-in:
 * - from a CSR's creation to its row in the incident thread (the watch's wave,
 *   whose window is part of the design), against the raw API watch event of the
 *   same CSR (the earliest anyone can know of it);
 * - "approve all that pass" of `n` pending CSRs, click to the clicker's answer,
 *   against one `kubectl certificate approve` of as many.
 */
export async function csrBench(root: string, subnet: number, o: { arrivals: number; approveAll: number; rounds: number }, log: (s: string) => void): Promise<[string, Summary, Summary][]> {
  await ensureLabPackages(log);
  // A new lab is a new cluster: nothing from an earlier run's Redis.
  rmSync(join(root, 'redis'), { recursive: true, force: true });
  const redis = await startRedis(join(root, 'redis'));
  const lab = await startLab({ root: join(root, 'lab'), subnet, log, kube: true });
  const kube = lab.kube!;
  const slack = new FakeSlack();
  await slack.start();
  const secret = randomBytes(16).toString('hex');
  const env = {
    ETCD_MEDIC_INVENTORY: lab.inventoryPath,
    REDIS_URL: redis.url,
    SLACK_BOT_TOKEN: `xoxb-lab-${randomBytes(8).toString('hex')}`,
    SLACK_SIGNING_SECRET: secret,
    SLACK_API_URL: slack.apiUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    QUEUE_PREFIX: 'bench-csr',
    LOG_LEVEL: 'silent',
  };
  const config = loadConfig({ ...process.env, ...env });
  const medic = await startMedic(config, createLogger('silent'), { bot: true, worker: true });
  const eventsUrl = `http://127.0.0.1:${medic.bot!.port}/slack/events`;
  let n = 0;
  const command = (text: string) => postSigned(eventsUrl, secret, slashCommandBody({ text, userId: 'UBENCH', channelId: CHANNEL, responseUrl: slack.responseUrl(`csr-${++n}`) }));
  const file = async (node: string) => (await kube.fileCsr({ as: 'bootstrap', subject: { cn: `system:node:${node}`, o: ['system:nodes'] } })).metadata.name as string;
  const rows: [string, Summary, Summary][] = [];

  try {
    // Arrival: an incident is open, its watch posts each new CSR to the thread.
    await command('incident start bench');
    const incident = await slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).startsWith('Incident: bench'), 20_000);
    const bot: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < o.arrivals + 1; i++) {
      const list = await kube.request('GET', CSRS);
      let seenAt = 0;
      const w = kube.watch(`${CSRS}?watch=true&resourceVersion=${list.body.metadata.resourceVersion}`, (e) => {
        if (e.type === 'ADDED' && !seenAt) seenAt = Date.now();
      });
      await w.status;
      // The request made first (openssl), so that the clock starts at the API call that creates the CSR.
      const { csrPem } = await makeCsr(join(root, 'tmp'), { cn: `system:node:m${(i % 3) + 1}`, o: ['system:nodes'] });
      const body = { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { generateName: 'csr-' }, spec: { request: Buffer.from(csrPem).toString('base64'), signerName: 'kubernetes.io/kube-apiserver-client-kubelet', usages: ['digital signature', 'client auth'] } };
      const since = slack.lastSeq;
      const t0 = Date.now();
      const created = await kube.request('POST', CSRS, body, { as: { ca: kube.ca.pem, token: kube.bootstrapToken } });
      const name = created.body.metadata.name as string;
      const posted = await slack.waitFor((r) => r.body.thread_ts === incident.ts && textOf(r).includes(name), 30_000, since);
      await waitFor('the raw watch event', () => seenAt > 0, 10_000, 5);
      w.close();
      if (i > 0) {
        // The first warms up connections.
        bot.push(posted.at - t0);
        raw.push(seenAt - t0);
      }
      await kube.kubectl(['certificate', 'deny', name]);
    }
    rows.push([`CSR created → row in thread`, summarize(bot), summarize(raw)]);
    await command('incident close');
    await slack.waitFor((r) => r.kind === 'response_url' && /closed/.test(String(r.body.text)), 20_000);

    // Approve all that pass, against kubectl approving the same number in one call.
    const botAll: number[] = [];
    const kubectlAll: number[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const mine: string[] = [];
      for (let i = 0; i < o.approveAll; i++) mine.push(await file(`m${(i % 3) + 1}`));
      const since = slack.lastSeq;
      await command('csr');
      const msg = await slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === CHANNEL && String(r.body.text).startsWith('Pending CSRs in lab'), 30_000, since);
      const blocks = latest(slack, msg.ts!).body.blocks as { type: string; block_id?: string; elements?: { value: string }[] }[];
      const all = blocks.find((b) => b.type === 'actions' && b.block_id?.startsWith('csrall-'))!;
      const responseUrl = slack.responseUrl(`all-${round}`);
      const t0 = performance.now();
      await postSigned(eventsUrl, secret, blockActionsBody({ userId: 'UBENCH', channelId: CHANNEL, messageTs: msg.ts!, actionId: 'medic_csr_approve_all', blockId: all.block_id!, value: all.elements![0]!.value, responseUrl }));
      const answer: SlackRecord = await slack.waitFor((r) => r.kind === 'response_url' && r.method === `all-${round}`, 120_000);
      botAll.push(performance.now() - t0);
      if (!String(answer.body.text).includes(`${o.approveAll} approved, 0 not`)) throw new Error(`approve-all did not approve all: ${String(answer.body.text).slice(0, 300)}`);

      const theirs: string[] = [];
      for (let i = 0; i < o.approveAll; i++) theirs.push(await file(`m${(i % 3) + 1}`));
      const t1 = performance.now();
      await kube.kubectl(['certificate', 'approve', ...theirs]);
      kubectlAll.push(performance.now() - t1);
    }
    rows.push([`approve all ${o.approveAll} CSRs`, summarize(botAll), summarize(kubectlAll)]);
  } finally {
    await medic.stop();
    await slack.stop();
    await lab.stop();
    await redis.stop();
  }
  return rows;
}
