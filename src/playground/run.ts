import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { readBody } from '../lab/fake-slack.js';
import { startLabStack, type LabStack } from '../lab/stack.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../lab/signed-requests.js';
import { createLogger } from '../log.js';
import { labAction, labState } from './lab-api.js';
import { startMedic, type Medic } from '../runtime.js';
import { claimPlayground } from './instance-lock.js';

const PAGE = readFileSync(new URL('./page.html', import.meta.url), 'utf8');

/**
 * The built-in default when no Slack workspace is configured: the lab, the real
 * bot and worker pointed at a local Slack stand-in, and a web page that plays
 * the incident channel (signed slash commands and clicks, Block Kit rendered).
 */
export async function runPlayground(): Promise<void> {
  const say = (s: string) => console.log(`[playground] ${s}`);
  const port = Number(process.env.PORT ?? 3000);
  const root = process.env.LAB_ROOT ?? join(tmpdir(), 'etcd-medic-playground');
  const subnet = Number(process.env.LAB_SUBNET ?? 20);

  // Before anything is touched: starting a lab wipes its directory and kills what runs in it.
  const claim = claimPlayground(root, port);
  if ('heldBy' in claim) {
    say(`a playground is already running from ${root} (process ${claim.heldBy.pid}, http://127.0.0.1:${claim.heldBy.port}/): open that page, or stop it first (Ctrl-C where it runs). Nothing was started or stopped.`);
    say(`Two at once need their own directory, subnet and port: LAB_ROOT=${root}-2 LAB_SUBNET=${subnet + 1} PORT=${port + 1} npm start`);
    process.exit(2);
  }
  let stack: LabStack | null = null;
  let medic: Medic | null = null;
  let eventsUrl = '';
  let n = 0;

  // The page's port is taken first too: a port in use ends the start before any lab process exists.
  const server = createServer((req, res) => void route(req, res).catch((err) => json(res, 500, { error: (err as Error).message })));
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  } catch (err) {
    claim.release();
    say(`cannot serve the page on 127.0.0.1:${port} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): another program listens there. Pick another port: PORT=${port + 1} npm start. Nothing was started.`);
    process.exit(2);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(PAGE);
    }
    if (!stack || !medic) return json(res, 503, { error: 'the playground is still starting' });
    if (req.method === 'GET' && url.pathname === '/api/records') {
      const since = Number(url.searchParams.get('since') ?? 0);
      return json(res, 200, stack.slack.records.filter((r) => r.seq > since));
    }
    if (req.method === 'GET' && url.pathname === '/api/lab') {
      return json(res, 200, labState(stack.lab));
    }
    const body = req.method === 'POST' ? (JSON.parse((await readBody(req)) || '{}') as Record<string, string>) : {};
    const user = /^U[A-Z0-9]+$/.test(body.user ?? '') ? body.user! : 'UALICE';
    if (req.method === 'POST' && url.pathname === '/api/command') {
      const form = slashCommandBody({ text: String(body.text ?? ''), userId: user, channelId: 'CINCIDENT', responseUrl: stack.slack.responseUrl(`play-${++n}`) });
      const r = await postSigned(eventsUrl, stack.secret, form);
      let ack = r.body;
      try {
        ack = (JSON.parse(r.body) as { text?: string }).text ?? '';
      } catch {
        /* an empty ack */
      }
      return json(res, 200, { status: r.status, ack, ms: r.ms });
    }
    if (req.method === 'POST' && url.pathname === '/api/click') {
      const form = blockActionsBody({
        userId: user,
        channelId: body.channel ?? 'CINCIDENT',
        messageTs: String(body.ts ?? ''),
        actionId: String(body.action_id ?? ''),
        blockId: String(body.block_id ?? ''),
        value: String(body.value ?? ''),
        responseUrl: stack.slack.responseUrl(`click-${++n}`),
      });
      const r = await postSigned(eventsUrl, stack.secret, form);
      return json(res, 200, { status: r.status });
    }
    const op = /^\/api\/lab\/([a-z-]+)$/.exec(url.pathname);
    if (req.method === 'POST' && op) {
      const r = await labAction(stack.lab, op[1]!, String(body.member ?? ''));
      return json(res, r.status, r.body);
    }
    json(res, 404, { error: 'not found' });
  }

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections();
    server.close();
    await medic?.stop().catch(() => undefined);
    await stack?.stop().catch(() => undefined);
    claim.release();
    process.exit(code);
  };
  process.on('SIGINT', () => void (say('stopping…'), stop(0)));
  process.on('SIGTERM', () => void (say('stopping…'), stop(0)));

  say('starting Redis, three TLS etcd members with sshd, a Kubernetes API stand-in with a kubelet per host, and a local Slack…');
  const t0 = Date.now();
  try {
    // With Kubernetes: /etcd nodes, /etcd csr and /etcd certs have a cluster to look at, and the page plays its faults.
    stack = await startLabStack(root, subnet, say, { kube: true });
    // A key for this playground only: approvals and the timeline are signed as in production.
    const hmacKey = process.env.ETCD_MEDIC_HMAC_KEY ?? randomBytes(32).toString('hex');
    const config = loadConfig({ ...process.env, ...stack.env, ETCD_MEDIC_HMAC_KEY: hmacKey, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
    const started = await startMedic(config, createLogger(config.settings.logLevel), { bot: true, worker: true });
    medic = started;
    eventsUrl = `http://127.0.0.1:${started.bot!.port}/slack/events`;
  } catch (err) {
    // Whatever part did start is stopped: a failed start leaves no etcd, sshd or Redis behind.
    say(`could not start: ${(err as Error).message}. Everything it had started is stopped.`);
    return stop(1);
  }
  say(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s. Open http://127.0.0.1:${port}/ and type /etcd status (Ctrl-C stops everything).`);
  say(`bot events URL ${eventsUrl}; inventory ${stack.lab.inventoryPath}`);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
