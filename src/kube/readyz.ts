import { request, type RequestOptions } from 'node:https';
import type { KubeCluster } from './client.js';
import { hostPort } from './client.js';
import { toKubeError, type KubeError } from './errors.js';
import { APISERVER_PORT } from './ports.js';

export type ReadyzResult =
  | { url: string; ok: boolean; status: number; /** checks the server lists as failing ("[-]etcd failed: …") */ failing: string[]; tookMs: number }
  | { url: string; ok: false; error: KubeError; tookMs: number };

/** The URL of the kube-apiserver on one master, for asking it directly rather than through a load balancer. */
export function apiserverUrl(host: string, port = APISERVER_PORT): string {
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * GET /readyz?verbose on one kube-apiserver, with the cluster's credentials and
 * CA (the kubeconfig's), bounded by the call timeout. 200 is ready; anything
 * else is not, with the failing checks the server names.
 */
export async function readyz(k: KubeCluster, url: string, timeoutMs = k.timeoutMs, now: () => number = Date.now): Promise<ReadyzResult> {
  const t0 = now();
  const where = hostPort(url);
  try {
    const opts: RequestOptions = {};
    // Fills the agent (CA, client cert and key) and headers (a bearer token) from the kubeconfig.
    await k.config.applyToHTTPSOptions(opts);
    const target = new URL('/readyz?verbose', url);
    const { status, body } = await get(target, opts, timeoutMs);
    const failing = body
      .split('\n')
      .filter((l) => l.startsWith('[-]'))
      .map((l) => l.slice(3).trim());
    return { url, ok: status === 200, status, failing, tookMs: now() - t0 };
  } catch (err) {
    return { url, ok: false, error: toKubeError(err, where, timeoutMs), tookMs: now() - t0 };
  }
}

function get(url: URL, opts: RequestOptions, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', agent: opts.agent, headers: opts.headers, auth: opts.auth, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        // /readyz?verbose is a few dozen lines; more than this is not an API server.
        if (body.length < 64 * 1024) body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
