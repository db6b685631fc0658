import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { blockLimitViolations } from '../render/block-limits.js';

/** One thing the bot sent to Slack: a Web API call or a post to a response_url. */
export interface SlackRecord {
  seq: number;
  at: number;
  kind: 'api' | 'response_url';
  method: string; // chat.postMessage, chat.update, … or the response_url id
  body: Record<string, unknown>;
  ts?: string;
}

interface Fault {
  method: string;
  status: number;
  retryAfter?: number;
  times: number;
}

/**
 * A Slack Web API that records what the bot sends and answers like Slack does,
 * including `invalid_blocks` for messages that break Block Kit's limits (a fake
 * that accepted those would hide a bug). Also serves response_url endpoints.
 */
export class FakeSlack {
  readonly records: SlackRecord[] = [];
  private server: Server | null = null;
  private seq = 0;
  private faults: Fault[] = [];
  private waiters: (() => void)[] = [];
  readonly groups = new Map<string, string[]>();
  /** Uploaded file contents by file ID (what a person would download). */
  readonly uploads = new Map<string, string>();
  private fileSeq = 0;
  port = 0;
  /** More Web API methods, by name (the Socket Mode stand-in adds apps.connections.open): the answer's JSON body. */
  readonly methods = new Map<string, (body: Record<string, unknown>, req: IncomingMessage) => Record<string, unknown>>();

  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  responseUrl(id: string): string {
    return `http://127.0.0.1:${this.port}/response/${id}`;
  }

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** Fault injection: the next `times` calls of `method` answer `status` (429 with Retry-After). */
  fail(method: string, status: number, times = 1, retryAfter?: number): void {
    this.faults.push({ method, status, times, retryAfter });
  }

  messages(filter: (r: SlackRecord) => boolean = () => true): SlackRecord[] {
    return this.records.filter(filter);
  }

  /** Resolves with the first record (from `sinceSeq` on) that matches, or rejects after `timeoutMs`. */
  async waitFor(match: (r: SlackRecord) => boolean, timeoutMs = 15_000, sinceSeq = 0): Promise<SlackRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.records.find((r) => r.seq > sinceSeq && match(r));
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake Slack: no matching message within ${timeoutMs} ms; got ${this.records.length} records`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  get lastSeq(): number {
    return this.seq;
  }

  private record(r: Omit<SlackRecord, 'seq' | 'at'>): SlackRecord {
    const full = { ...r, seq: ++this.seq, at: Date.now() };
    this.records.push(full);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
    return full;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const raw = await readBody(req);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };

    if (req.method === 'GET' && url.pathname === '/records') return send(200, this.records.filter((r) => r.seq > Number(url.searchParams.get('since') ?? 0)));

    const body = parseBody(raw, req.headers['content-type']);
    if (url.pathname.startsWith('/response/')) {
      const id = url.pathname.slice('/response/'.length);
      const violations = blockLimitViolations(body.blocks ?? []);
      if (violations.length) return send(400, { ok: false, error: 'invalid_blocks', violations });
      this.record({ kind: 'response_url', method: id, body });
      return send(200, { ok: true });
    }
    if (url.pathname.startsWith('/upload/')) {
      // The file's bytes, sent to the upload_url files.getUploadURLExternal handed out.
      this.uploads.set(url.pathname.slice('/upload/'.length), raw);
      return send(200, { ok: true });
    }
    if (!url.pathname.startsWith('/api/')) return send(404, { ok: false, error: 'unknown_path' });
    const method = url.pathname.slice('/api/'.length);

    const fault = this.faults.find((f) => f.method === method && f.times > 0);
    if (fault) {
      fault.times--;
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {};
      return send(fault.status, { ok: false, error: fault.status === 429 ? 'ratelimited' : 'internal_error' }, headers);
    }

    const extra = this.methods.get(method);
    if (extra) return send(200, extra(body, req));
    switch (method) {
      case 'auth.test':
        return send(200, { ok: true, url: 'https://lab.slack.invalid/', team: 'lab', user: 'etcd-medic', team_id: 'TLAB', user_id: 'UBOT', bot_id: 'BBOT' });
      case 'chat.postMessage':
      case 'chat.update':
      case 'chat.postEphemeral': {
        if (!body.channel) return send(200, { ok: false, error: 'channel_not_found' });
        if (!body.text && !body.blocks) return send(200, { ok: false, error: 'no_text' });
        const violations = blockLimitViolations(body.blocks ?? []);
        if (violations.length) return send(200, { ok: false, error: 'invalid_blocks', response_metadata: { messages: violations } });
        const ts = method === 'chat.update' ? String(body.ts) : `${Math.floor(Date.now() / 1000)}.${String(this.seq + 1).padStart(6, '0')}`;
        this.record({ kind: 'api', method, body, ts });
        return send(200, { ok: true, channel: body.channel, ts, message: { text: body.text, ts } });
      }
      case 'files.getUploadURLExternal': {
        const id = `F${String(++this.fileSeq).padStart(6, '0')}`;
        return send(200, { ok: true, upload_url: `http://127.0.0.1:${this.port}/upload/${id}`, file_id: id });
      }
      case 'files.completeUploadExternal': {
        const files = (typeof body.files === 'string' ? JSON.parse(body.files) : (body.files ?? [])) as { id: string; title?: string }[];
        this.record({ kind: 'api', method, body: { ...body, contents: files.map((f) => this.uploads.get(f.id) ?? '') } });
        return send(200, { ok: true, files: files.map((f) => ({ id: f.id, title: f.title })) });
      }
      case 'usergroups.users.list':
        return send(200, { ok: true, users: this.groups.get(String(body.usergroup)) ?? [] });
      default:
        this.record({ kind: 'api', method, body });
        return send(200, { ok: true });
    }
  }
}

/** The whole body of a request, as text. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.on('data', (d) => (s += d));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

/** The Web API client sends form-encoded bodies with JSON-encoded fields; response_url gets JSON. */
function parseBody(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (!raw) return {};
  if (contentType?.includes('application/json')) return JSON.parse(raw) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    out[k] = (k === 'blocks' || k === 'attachments') && v.startsWith('[') ? JSON.parse(v) : v;
  }
  return out;
}
