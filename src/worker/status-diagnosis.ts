import type { ClusterConfig } from '../config/schema.js';
import { statusCertLine, statusCertReadings, STATUS_CERT_GRACE_MS } from '../certs/status-check.js';
import type { TargetReading } from '../certs/targets.js';
import { KubeCluster } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';
import { listPendingCsrs } from '../kube/csrs.js';
import { csrsOfNodes } from '../kube/node-csrs.js';
import type { StatusReport } from '../status/assess.js';
import { diagnose, type Diagnosis, type PendingCsr } from '../status/diagnose.js';

/**
 * The pending CSRs of the control-plane nodes (the inventory's masters), listed
 * while the etcd view is taken and waited for at most a short grace after it:
 * with etcd down the API server may hang, and status must not wait for it.
 * Null when the cluster has no Kubernetes access or the list did not come in time.
 */
export async function statusPendingCsrs(cluster: ClusterConfig, view: Promise<unknown>, graceMs = STATUS_CERT_GRACE_MS): Promise<PendingCsr[] | null> {
  if (!cluster.kubeconfig) return null;
  const list = (async () => {
    // Statuses asked within seconds of each other share a kept connection instead of a TLS handshake each.
    const k = KubeCluster.forCluster(cluster, { timeoutMs: cluster.etcd.callTimeoutMs, keepAlive: true });
    // A kept connection the server (or a load balancer) closed just as it was used fails at once: ask once more.
    const pending = await listPendingCsrs(k).catch((err) => {
      if (err instanceof KubeError && err.kind === 'refused') return listPendingCsrs(k);
      throw err;
    });
    const ofNode = csrsOfNodes(pending, cluster.members.map((m) => m.name));
    return cluster.members.flatMap((m) => ofNode.get(m.name)!.map((c) => ({ name: c.metadata?.name ?? '?', node: m.name })));
  })().catch(() => null);
  await view.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), graceMs)));
  try {
    return await Promise.race([list, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface DiagnosedStatus {
  report: StatusReport;
  certs: TargetReading[] | null;
  diagnoses: Diagnosis[];
}

/**
 * Everything `/etcd status` looks at, for the status job and the proactive watch
 * alike: beside the etcd view being taken, the certificates and the masters'
 * pending CSRs (each waited for at most a short grace after the view), the
 * certificate line added to the warnings, and the diagnosis. `extras: false`
 * reads etcd alone (the bench compares the two).
 */
export async function diagnosedStatus(cluster: ClusterConfig, view: Promise<{ report: StatusReport }>, opts: { extras?: boolean } = {}): Promise<DiagnosedStatus> {
  const extras = opts.extras !== false;
  const certs = extras ? statusCertReadings(cluster, view).catch(() => null) : Promise.resolve(null);
  const csrs = extras ? statusPendingCsrs(cluster, view) : Promise.resolve(null);
  const [{ report }, readings, pending] = await Promise.all([view, certs, csrs]);
  const certLine = readings && statusCertLine(readings);
  if (certLine) report.warnings.push(certLine);
  return { report, certs: readings, diagnoses: diagnose({ cluster, report, certs: readings, csrs: pending }) };
}
