import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ClusterConfig } from '../config/schema.js';
import { hostPortOf } from '../host-port.js';
import { APISERVER_PORT, KUBELET_PORT } from '../kube/ports.js';
import { readPemCertFile, readServingCert, URGENT_DAYS, type CertReading } from './expiry.js';

export type CertTargetKind = 'etcd-client' | 'etcd-peer' | 'bot-client' | 'kube-apiserver' | 'kubelet';

export type CertTarget =
  | { kind: Exclude<CertTargetKind, 'bot-client'>; label: string; member?: string; host: string; port: number }
  | { kind: 'bot-client'; label: string; file: string };

export interface CertTargets {
  targets: CertTarget[];
  /** What could not be listed, and why (a person should know it was not checked). */
  notes: string[];
}

/** A member as the member list reports it: its name and peer URLs. */
export interface ListedMember {
  name: string;
  peerURLs: string[];
}

/**
 * Every certificate a recovery of this cluster depends on, and where to read it:
 * each etcd member's client URL (the inventory's endpoints) and peer URL (from
 * the member list, which only a live member can give), the bot's own etcd client
 * certificate, and, when the cluster has Kubernetes access configured, each
 * master's kube-apiserver (6443) and kubelet (10250) serving certificates.
 */
export function certTargets(cluster: ClusterConfig, listed: ListedMember[] | null): CertTargets {
  const targets: CertTarget[] = [];
  const notes: string[] = [];
  const memberAt = (host: string) => cluster.members.find((m) => m.host === host)?.name;
  for (const ep of cluster.etcd.endpoints) {
    const hp = hostPortOf(ep);
    if (!hp) continue;
    if (!hp.https) {
      notes.push(`${ep}: plain HTTP, no certificate`);
      continue;
    }
    const member = memberAt(hp.host);
    targets.push({ kind: 'etcd-client', label: `etcd ${member ?? hp.host} client ${ep}`, member, host: hp.host, port: hp.port });
  }
  if (listed) {
    for (const m of listed) {
      for (const url of m.peerURLs) {
        const hp = hostPortOf(url);
        if (!hp) continue;
        if (!hp.https) {
          notes.push(`${m.name} peer ${url}: plain HTTP, no certificate`);
          continue;
        }
        targets.push({ kind: 'etcd-peer', label: `etcd ${m.name || hp.host} peer ${url}`, member: m.name || undefined, host: hp.host, port: hp.port });
      }
    }
  } else {
    notes.push('etcd peer certificates not checked: no member answered the member list, which names the peer URLs');
  }
  if (cluster.etcd.tls) targets.push({ kind: 'bot-client', label: `the bot's etcd client certificate ${cluster.etcd.tls.cert}`, file: cluster.etcd.tls.cert });
  if (cluster.kubeconfig) {
    for (const m of cluster.members) {
      targets.push({ kind: 'kube-apiserver', label: `kube-apiserver on ${m.name} ${m.host}:${APISERVER_PORT}`, member: m.name, host: m.host, port: APISERVER_PORT });
      targets.push({ kind: 'kubelet', label: `kubelet on ${m.name} ${m.host}:${KUBELET_PORT}`, member: m.name, host: m.host, port: KUBELET_PORT });
    }
  } else {
    notes.push('kube-apiserver and kubelet certificates not checked: the cluster has no kubeconfig in the inventory');
  }
  return { targets, notes };
}

export type TargetReading = { target: CertTarget } & CertReading;

/**
 * Reads every target at once, each bounded by its timeout. etcd endpoints get
 * the bot's client certificate presented (a member with client-cert-auth may
 * insist on one) and the etcd CA to say whether the chain verifies.
 */
export async function readTargets(cluster: ClusterConfig, targets: CertTarget[], opts: { timeoutMs?: number; now?: Date } = {}): Promise<TargetReading[]> {
  return Promise.all(readEachTarget(cluster, targets, opts));
}

/** As readTargets, one promise per target, each settling as soon as its own handshake is done. */
export function readEachTarget(cluster: ClusterConfig, targets: CertTarget[], opts: { timeoutMs?: number; now?: Date } = {}): Promise<TargetReading>[] {
  const tls = cluster.etcd.tls;
  let etcdTls: { secureContext?: SecureContext } = {};
  if (tls && targets.some((t) => t.kind === 'etcd-client' || t.kind === 'etcd-peer')) {
    try {
      etcdTls = { secureContext: etcdContext(tls) };
    } catch {
      // Unreadable files: the bot-client target reports it; handshakes go on without them.
    }
  }
  return targets.map(async (target): Promise<TargetReading> => {
    if (target.kind === 'bot-client') return { target, ...readPemCertFile(target.file, opts.now) };
    const etcd = target.kind === 'etcd-client' || target.kind === 'etcd-peer';
    return { target, ...(await readServingCert(target.host, target.port, { timeoutMs: opts.timeoutMs, now: opts.now, ...(etcd ? etcdTls : {}) })) };
  });
}

/** The last context made from each set of etcd TLS files, with the bytes it was made from. */
const etcdContexts = new Map<string, { pems: Buffer[]; context: SecureContext }>();

/**
 * The bot's etcd client certificate, key and CA as one TLS context for the etcd
 * handshakes. Making one (key, certificate and CA parsed) costs about half a
 * handshake, and status reads six etcd certificates each time it is asked, so the
 * context is kept while the three files hold the same bytes. They are read every
 * time (a fraction of a millisecond): a renewed client certificate is presented
 * from the next reading on.
 */
export function etcdContext(tls: { cert: string; key: string; ca: string }): SecureContext {
  const files = [tls.cert, tls.key, tls.ca];
  const pems = files.map((f) => readFileSync(f));
  const k = files.join('\u0000');
  const known = etcdContexts.get(k);
  if (known && known.pems.every((p, i) => p.equals(pems[i]!))) return known.context;
  const context = createSecureContext({ cert: pems[0], key: pems[1], ca: pems[2] });
  etcdContexts.set(k, { pems, context });
  return context;
}

/** The readings `/etcd status` warns about: unreadable is not among them (that is `/etcd certs`' to say), expired or within `days` is. */
export function urgentReadings(readings: TargetReading[], days = URGENT_DAYS): TargetReading[] {
  return readings.filter((r) => r.ok && (r.expiry.level === 'error' || r.expiry.daysLeft < days));
}
