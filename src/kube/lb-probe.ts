import type { Agent } from 'node:https';
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import type { KubeCluster } from './client.js';

/** What one TLS connection to an API endpoint found: the names the serving certificate carries, or why it found none. */
export type EndpointProbe = { ok: true; names: string[] } | { ok: false; error: string };

/** "DNS:m1, IP Address:10.0.0.1" → ["m1", "10.0.0.1"] (IPv6 as Node prints it). */
export function certNames(cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'>): string[] {
  const sans = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
  const cn = cert.subject?.CN;
  return [...new Set([...sans, ...(typeof cn === 'string' && cn ? [cn] : [])])];
}

/**
 * One fresh TLS connection to host:port with the cluster's CA and client
 * credentials (the kubeconfig's): the serving certificate's names, read at
 * the handshake, then the connection closed. Through a TCP load balancer (what
 * kubeadm and OpenShift put in front of the API servers) the certificate is the
 * backend's own, so its names say which master answered. Nothing is sent.
 */
export async function probeEndpoint(k: KubeCluster, hostPort: { host: string; port: number }, timeoutMs = 2000): Promise<EndpointProbe> {
  const opts: { agent?: Agent } = {};
  await k.config.applyToHTTPSOptions(opts as never);
  const base = (opts.agent?.options ?? {}) as { ca?: unknown; cert?: unknown; key?: unknown };
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: EndpointProbe) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const sock = connect({
      host: hostPort.host,
      port: hostPort.port,
      ca: base.ca as string | undefined,
      cert: base.cert as string | undefined,
      key: base.key as string | undefined,
      ...(isIP(hostPort.host) ? {} : { servername: hostPort.host }),
      // The certificate is read, not trusted for anything: a backend serving another CA's certificate is still named.
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => finish({ ok: false, error: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
    sock.once('secureConnect', () => finish({ ok: true, names: certNames(sock.getPeerCertificate()) }));
    sock.once('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }));
    sock.once('close', () => finish({ ok: false, error: 'closed before the TLS handshake (nothing behind it?)' }));
  });
}
