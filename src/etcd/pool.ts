import { readFileSync } from 'node:fs';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import type { ClusterConfig } from '../config/schema.js';

/**
 * One etcd client per endpoint, each call bounded by a deadline.
 *
 * etcd3's default client load-balances over all hosts and retries on another
 * one, so a frozen member makes every call wait for the library's own timeouts.
 * During an incident we want the opposite: ask each member separately, fail
 * after the configured deadline, and never silently answer from a different
 * member than the one asked.
 */
export class EtcdPool {
  private readonly clients = new Map<string, Etcd3>();

  /** A client for one endpoint of a cluster; created on first use and kept (gRPC reconnects by itself). */
  client(cluster: ClusterConfig, endpoint: string): Etcd3 {
    const key = `${cluster.name}|${endpoint}`;
    let c = this.clients.get(key);
    if (!c) {
      c = openEndpoint(cluster, endpoint);
      this.clients.set(key, c);
    }
    return c;
  }

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    for (const c of all) c.close();
  }
}

/**
 * `fastReconnect`: for a client that watches a member come up (a learner starting): gRPC's reconnect
 * backoff (1 s, growing to minutes) would otherwise hide for seconds a member that already answers.
 */
export function openEndpoint(cluster: ClusterConfig, endpoint: string, deadlineMs = cluster.etcd.callTimeoutMs, opts: { fastReconnect?: boolean } = {}): Etcd3 {
  const tls = cluster.etcd.tls;
  return new Etcd3({
    hosts: [endpoint],
    credentials: tls
      ? {
          rootCertificate: readFileSync(tls.ca),
          certChain: readFileSync(tls.cert),
          privateKey: readFileSync(tls.key),
        }
      : undefined,
    // A 64 KB HTTP/2 window (grpc-js's default) makes a snapshot stream wait on round trips.
    grpcOptions: {
      'grpc-node.flow_control_window': 16 * 1024 * 1024,
      ...(opts.fastReconnect ? { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 } : {}),
    },
    // No retry policy: a failure is reported as it is, for this endpoint only.
    faultHandling: { host: () => noop, global: noop },
    // Streams (snapshots) have no deadline; every unary call does.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + deadlineMs }),
  });
}

export type EndpointErrorKind = 'timeout' | 'refused' | 'tls' | 'error';

/** Sorts a gRPC/etcd error into what an operator acts on differently. */
export function classifyError(err: unknown): { kind: EndpointErrorKind; message: string } {
  const raw = err instanceof Error ? err.message : String(err);
  const message = raw.replace(/\s+/g, ' ').slice(0, 300);
  if (/deadline|timed? ?out/i.test(raw)) return { kind: 'timeout', message: 'no answer before the deadline' };
  if (/ECONNREFUSED|connection refused/i.test(raw)) return { kind: 'refused', message: 'connection refused' };
  if (/SSL|TLS|certificate|handshake|alert/i.test(raw)) return { kind: 'tls', message };
  if (/No connection established|UNAVAILABLE|ECONNRESET|EHOSTUNREACH|ENETUNREACH/i.test(raw)) {
    return { kind: 'refused', message };
  }
  return { kind: 'error', message };
}

/** etcdctl prints member IDs as unpadded lowercase hex; the gRPC client gives decimal strings. */
export function hexId(decimal: string): string {
  return BigInt(decimal).toString(16);
}
