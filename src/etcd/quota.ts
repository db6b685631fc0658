import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ClusterConfig } from '../config/schema.js';

/** What etcd runs with when --quota-backend-bytes is not set (or 0): 2 GiB. */
export const ETCD_DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;

/** The metrics page is a few hundred KB; anything much larger is not etcd's. */
const MAX_METRICS_BYTES = 8 * 1024 * 1024;

/**
 * The backend quota a member runs with, in bytes, as the gauge
 * `etcd_server_quota_backend_bytes` of its metrics says (etcd 3.3 and later);
 * null when the page has no such gauge. etcd sets it from the quota it
 * applies: its 2 GiB default when the flag is unset, a negative value when a
 * negative flag turned the quota off (returned as Infinity: no size is over it).
 */
export function quotaInMetrics(text: string): number | null {
  const m = /^etcd_server_quota_backend_bytes(?:\{[^}\n]*\})?[ \t]+(\S+)/m.exec(text);
  if (!m) return null;
  const v = Number(m[1]);
  if (!Number.isFinite(v)) return null;
  if (v < 0) return Infinity;
  return v === 0 ? ETCD_DEFAULT_QUOTA_BYTES : v;
}

/**
 * Asks one member, on its client URL (its /metrics, with the bot's client
 * certificate where the cluster uses TLS), which quota it runs with. This is
 * the quota etcd raises NOSPACE against, whatever the inventory or a config
 * file edited since etcd started says. Rejects, within the cluster's call
 * deadline, when the member does not tell.
 */
export function readMemberQuota(cluster: ClusterConfig, endpoint: string, timeoutMs = cluster.etcd.callTimeoutMs): Promise<number> {
  const url = new URL('/metrics', endpoint);
  const tls = cluster.etcd.tls;
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(new Error(`${url.href} answered HTTP ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_METRICS_BYTES) return fail(new Error(`${url.href} sent more than ${MAX_METRICS_BYTES} bytes`));
        chunks.push(c);
      });
      res.on('error', fail);
      res.on('end', () => {
        const q = quotaInMetrics(Buffer.concat(chunks).toString('utf8'));
        if (q === null) return fail(new Error(`${url.href} has no etcd_server_quota_backend_bytes (etcd before 3.3?)`));
        clearTimeout(timer);
        resolve(q);
      });
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ca: tls && readFileSync(tls.ca), cert: tls && readFileSync(tls.cert), key: tls && readFileSync(tls.key) }, onResponse)
        : httpRequest(url, onResponse);
    const timer = setTimeout(() => fail(new Error(`no answer from ${url.href} within ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    }
    req.on('error', fail);
    req.end();
  });
}
