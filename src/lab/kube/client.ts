import { request, type RequestOptions } from 'node:https';

/** Who calls: a client cert (PEM) or a bearer token; the CA is the cluster's. */
export interface Credentials {
  ca: string;
  cert?: string;
  key?: string;
  token?: string;
}

export interface KubeResponse {
  status: number;
  body: any;
  text: string;
}

function options(base: string, creds: Credentials, method: string, path: string, headers: Record<string, string>): RequestOptions {
  const u = new URL(path, base);
  return {
    method,
    hostname: u.hostname,
    port: u.port,
    path: u.pathname + u.search,
    ca: creds.ca,
    cert: creds.cert,
    key: creds.key,
    agent: false,
    timeout: 10_000,
    headers: { Accept: 'application/json', ...(creds.token ? { Authorization: `Bearer ${creds.token}` } : {}), ...headers },
  };
}

/** One request to an API endpoint; JSON in and out. Rejects only when no answer comes. */
export function kubeRequest(base: string, creds: Credentials, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<KubeResponse> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const h = data ? { 'Content-Type': 'application/json', ...headers } : headers;
  return new Promise((resolve, reject) => {
    const req = request(options(base, creds, method, path, h), (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* health endpoints answer text */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

export interface WatchEvent {
  type: string;
  object: any;
}

/** A raw watch: each newline-delimited event to `onEvent`; `ended` settles when the server ends or cuts the stream. */
export function kubeWatch(base: string, creds: Credentials, path: string, onEvent: (e: WatchEvent) => void): { status: Promise<number>; ended: Promise<string>; close(): void } {
  let req!: ReturnType<typeof request>;
  let settleStatus!: (n: number) => void;
  const status = new Promise<number>((r) => (settleStatus = r));
  const ended = new Promise<string>((resolve) => {
    req = request({ ...options(base, creds, 'GET', path, {}), timeout: 0 }, (res) => {
      settleStatus(res.statusCode ?? 0);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line) onEvent(JSON.parse(line) as WatchEvent);
        }
      });
      res.on('end', () => resolve('end'));
      res.on('error', (e) => resolve(`error: ${e.message}`));
      res.on('aborted', () => resolve('aborted'));
    });
    req.on('error', (e) => {
      settleStatus(0);
      resolve(`error: ${e.message}`);
    });
    req.end();
  });
  return { status, ended, close: () => req.destroy() };
}
