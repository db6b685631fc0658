import type { ClusterConfig } from '../config/schema.js';
import type { StatusReport } from '../status/assess.js';
import { certTargets, readTargets, type CertTarget, type ListedMember, type TargetReading } from './targets.js';

/** How long `/etcd certs` waits for one handshake: long enough for a slow link, short enough for a chat answer. */
export const CERTS_TIMEOUT_MS = 5000;

export interface CertCheck {
  cluster: string;
  at: Date;
  tookMs: number;
  /** Worst first: expired or not yet valid, then closest to their end, then unreadable, then the rest. */
  readings: TargetReading[];
  /** What was not checked, and why. */
  notes: string[];
}

/**
 * The members the member list names, with their peer URLs: what `certTargets` needs
 * to find the peer certificates. Null when no member answered (then only the
 * inventory is known, which names no peer URL). A member added but never started
 * has nothing listening yet and is left out.
 */
export function listedMembers(report: StatusReport): ListedMember[] | null {
  if (!report.members.some((m) => m.idHex !== null && m.peerURLs.length > 0)) return null;
  return report.members.filter((m) => m.started).map((m) => ({ name: m.name, peerURLs: m.peerURLs }));
}

const rank = (r: TargetReading): number => (!r.ok ? 2 : r.expiry.level === 'error' ? 0 : r.expiry.level === 'warn' ? 1 : 3);

/** Worst first; within a class, the fewest days left first; ties keep the targets' order. */
export function worstFirst(readings: TargetReading[]): TargetReading[] {
  return readings
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r) - rank(b.r) || (a.r.ok && b.r.ok ? a.r.expiry.daysLeft - b.r.expiry.daysLeft : 0) || a.i - b.i)
    .map((x) => x.r);
}

export interface CertCounts {
  expired: number;
  notYetValid: number;
  warn: number;
  unreadable: number;
  ok: number;
}

/** A certificate whose window has not begun (a clock or an issuing mistake): an error, but not an expired one. */
export const notYetValid = (r: TargetReading, now: Date): boolean => r.ok && r.cert.notBefore.getTime() > now.getTime();

export function countReadings(readings: TargetReading[], now: Date): CertCounts {
  const c: CertCounts = { expired: 0, notYetValid: 0, warn: 0, unreadable: 0, ok: 0 };
  for (const r of readings) {
    if (!r.ok) c.unreadable++;
    else if (r.expiry.level === 'error') c[notYetValid(r, now) ? 'notYetValid' : 'expired']++;
    else if (r.expiry.level === 'warn') c.warn++;
    else c.ok++;
  }
  return c;
}

/**
 * Reads every certificate a recovery of this cluster depends on, each handshake
 * bounded by `timeoutMs`. The targets the inventory names are read at once; the
 * peer URLs come from the member list (`members`, which may still be on its way),
 * so the peers are read as soon as it is there.
 */
export async function checkCerts(
  cluster: ClusterConfig,
  members: ListedMember[] | null | Promise<ListedMember[] | null>,
  opts: { timeoutMs?: number; now?: () => Date } = {},
): Promise<CertCheck> {
  const now = opts.now ?? (() => new Date());
  const at = now();
  const read = (targets: CertTarget[]) => readTargets(cluster, targets, { timeoutMs: opts.timeoutMs ?? CERTS_TIMEOUT_MS, now: at });
  const early = read(certTargets(cluster, null).targets);
  const { targets, notes } = certTargets(cluster, await members);
  const peers = await read(targets.filter((t) => t.kind === 'etcd-peer'));
  // Back in the targets' own order (client, peer, bot, Kubernetes) before sorting, so ties read naturally.
  const order = new Map(targets.map((t, i) => [t.label, i]));
  const all = [...(await early), ...peers].sort((a, b) => (order.get(a.target.label) ?? 0) - (order.get(b.target.label) ?? 0));
  return { cluster: cluster.name, at, tookMs: now().getTime() - at.getTime(), readings: worstFirst(all), notes };
}

/** What a target is, for a person: "kubelet on m1", "etcd peer of m2", "the bot's etcd client certificate". */
export function targetWhat(t: CertTarget): string {
  switch (t.kind) {
    case 'etcd-client':
      return `etcd client of ${t.member ?? t.host}`;
    case 'etcd-peer':
      return `etcd peer of ${t.member ?? t.host}`;
    case 'bot-client':
      return "the bot's etcd client certificate";
    case 'kube-apiserver':
      return `kube-apiserver on ${t.member ?? t.host}`;
    case 'kubelet':
      return `kubelet on ${t.member ?? t.host}`;
  }
}

/** Where it was read: host:port of the handshake, or the file. */
export function targetWhere(t: CertTarget): string {
  return t.kind === 'bot-client' ? t.file : `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}
