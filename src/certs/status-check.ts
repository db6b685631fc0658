import type { ClusterConfig } from '../config/schema.js';
import type { StatusReport } from '../status/assess.js';
import { listedMembers, targetWhat, worstFirst } from './check.js';
import { URGENT_DAYS } from './expiry.js';
import { certTargets, readEachTarget, urgentReadings, type CertTarget, type TargetReading } from './targets.js';

/**
 * How long `/etcd status` still waits for handshakes in flight once its etcd view
 * is done. A healthy handshake takes a few milliseconds; one that takes longer
 * (a port that drops packets) is left out rather than holding the answer back.
 */
export const STATUS_CERT_GRACE_MS = 250;

export interface StatusCertOptions {
  /** The status deadline (the cluster's per-call deadline by default): no handshake outlives it. */
  deadlineMs?: number;
  graceMs?: number;
  now?: () => number;
}

/**
 * The certificate readings `/etcd status` warns about, read while the etcd view is
 * taken: every target the inventory names (client URLs, the bot's own cert,
 * kube-apiserver and kubelet) from the start, the peer URLs once the view has the
 * member list (or from the start, when the last member list named them). It waits
 * no longer than the view plus a short grace, and never past the deadline; what was
 * not read by then is not a warning (`/etcd certs` says why).
 */
export async function statusCertReadings(cluster: ClusterConfig, view: Promise<{ report: StatusReport }>, opts: StatusCertOptions = {}): Promise<TargetReading[]> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const deadlineAt = t0 + (opts.deadlineMs ?? cluster.etcd.callTimeoutMs);
  const got: TargetReading[] = [];
  const collect = (ps: Promise<TargetReading>[]) => Promise.all(ps.map((p) => p.then((r) => void got.push(r))));

  // The peer URLs the last member list named are read from the start too, so that they are not a
  // handshake after the view; a reading counts only if the member list of this view names its URL again.
  const named = certTargets(cluster, null).targets;
  const prior = lastPeers.get(cluster.name) ?? [];
  const first = readShared(cluster, [...named, ...prior], deadlineAt - t0);
  const early = collect(first.slice(0, named.length));
  const guessed = new Map(prior.map((t, i) => [t.label, first[named.length + i]!]));
  const { report } = await view;
  const cutoff = Math.min(deadlineAt, now() + (opts.graceMs ?? STATUS_CERT_GRACE_MS));
  const listed = listedMembers(report);
  const peers = listed ? certTargets(cluster, listed).targets.filter((t) => t.kind === 'etcd-peer') : [];
  if (listed) lastPeers.set(cluster.name, peers);
  const left = cutoff - now();
  const unread = left >= 20 ? peers.filter((t) => !guessed.has(t.label)) : [];
  const late = collect([...peers.flatMap((t) => guessed.get(t.label) ?? []), ...readShared(cluster, unread, left)]);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all([early, late]), new Promise((r) => (timer = setTimeout(r, Math.max(0, cutoff - now()))))]);
  clearTimeout(timer);
  return worstFirst([...got]);
}

/**
 * Handshakes in flight, by cluster and target. Status jobs that run at the same
 * time (a burst of people typing `/etcd status` in an incident) share a reading
 * rather than each doing the same handshake: about a millisecond or two of CPU
 * each, a dozen per status. Only reads still in flight are shared, so a status
 * asked after another has finished reads afresh.
 */
const inflight = new Map<string, Promise<TargetReading>>();

/** The peer targets the last member list of each cluster named (what the next status reads from its start). */
const lastPeers = new Map<string, CertTarget[]>();

function readShared(cluster: ClusterConfig, targets: CertTarget[], timeoutMs: number): Promise<TargetReading>[] {
  const key = (t: CertTarget) => `${cluster.name}\u0000${t.label}`;
  const missing = targets.filter((t) => !inflight.has(key(t)));
  readEachTarget(cluster, missing, { timeoutMs }).forEach((p, i) => {
    const k = key(missing[i]!);
    const shared = p.finally(() => inflight.get(k) === shared && inflight.delete(k));
    inflight.set(k, shared);
  });
  return targets.map((t) => inflight.get(key(t))!);
}

/** The one line `/etcd status` adds when a certificate has expired or ends within URGENT_DAYS; null when none does. */
export function statusCertLine(readings: TargetReading[], days = URGENT_DAYS): string | null {
  const urgent = worstFirst(urgentReadings(readings, days));
  if (urgent.length === 0) return null;
  const named = urgent.slice(0, 3).map((r) => `${targetWhat(r.target)} ${r.ok ? r.expiry.text : ''}`.trim());
  const more = urgent.length > 3 ? ` and ${urgent.length - 3} more` : '';
  return `:warning: ${urgent.length === 1 ? 'A certificate' : `${urgent.length} certificates`} expired or ending within ${days} days: ${named.join('; ')}${more}. \`/etcd certs\` lists every certificate and what to do.`;
}
