import type { ClusterConfig } from '../config/schema.js';
import type { StatusReport } from '../status/assess.js';
import { listedMembers, targetWhat, worstFirst } from './check.js';
import { URGENT_DAYS } from './expiry.js';
import { certTargets, readTargets, urgentReadings, type CertTarget, type TargetReading } from './targets.js';

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
 * member list. It waits no longer than the view plus a short grace, and never past
 * the deadline; what was not read by then is not a warning (`/etcd certs` says why).
 */
export async function statusCertReadings(cluster: ClusterConfig, view: Promise<{ report: StatusReport }>, opts: StatusCertOptions = {}): Promise<TargetReading[]> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const deadlineAt = t0 + (opts.deadlineMs ?? cluster.etcd.callTimeoutMs);
  const got: TargetReading[] = [];
  const readEach = (targets: CertTarget[], timeoutMs: number) =>
    Promise.all(targets.map((t) => readTargets(cluster, [t], { timeoutMs }).then(([r]) => void got.push(r!))));

  const early = readEach(certTargets(cluster, null).targets, deadlineAt - t0);
  const { report } = await view;
  const cutoff = Math.min(deadlineAt, now() + (opts.graceMs ?? STATUS_CERT_GRACE_MS));
  const listed = listedMembers(report);
  const peers = listed ? certTargets(cluster, listed).targets.filter((t) => t.kind === 'etcd-peer') : [];
  const left = cutoff - now();
  const late = left >= 20 ? readEach(peers, left) : Promise.resolve([]);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all([early, late]), new Promise((r) => (timer = setTimeout(r, Math.max(0, cutoff - now()))))]);
  clearTimeout(timer);
  return worstFirst([...got]);
}

/** The one line `/etcd status` adds when a certificate has expired or ends within URGENT_DAYS; null when none does. */
export function statusCertLine(readings: TargetReading[], days = URGENT_DAYS): string | null {
  const urgent = worstFirst(urgentReadings(readings, days));
  if (urgent.length === 0) return null;
  const named = urgent.slice(0, 3).map((r) => `${targetWhat(r.target)} ${r.ok ? r.expiry.text : ''}`.trim());
  const more = urgent.length > 3 ? ` and ${urgent.length - 3} more` : '';
  return `:warning: ${urgent.length === 1 ? 'A certificate' : `${urgent.length} certificates`} expired or ending within ${days} days: ${named.join('; ')}${more}. \`/etcd certs\` lists every certificate and what to do.`;
}
