import type { ClusterConfig } from '../config/schema.js';
import { statusCertLine, statusCertReadings, STATUS_CERT_GRACE_MS } from '../certs/status-check.js';
import type { TargetReading } from '../certs/targets.js';
import type { EtcdPool } from '../etcd/pool.js';
import { KubeCluster } from '../kube/client.js';
import { listPendingCsrs } from '../kube/csrs.js';
import { csrsOfNode } from '../kube/node-csrs.js';
import type { StatusReport } from '../status/assess.js';
import { diagnose, type Diagnosis, type PendingCsr } from '../status/diagnose.js';
import { viewCluster } from './cluster-view.js';

/**
 * The pending CSRs of the control-plane nodes (the inventory's masters), listed
 * while the etcd view is taken and waited for at most a short grace after it:
 * with etcd down the API server may hang, and status must not wait for it.
 * Null when the cluster has no Kubernetes access or the list did not come in time.
 */
export async function statusPendingCsrs(cluster: ClusterConfig, view: Promise<unknown>, graceMs = STATUS_CERT_GRACE_MS): Promise<PendingCsr[] | null> {
  if (!cluster.kubeconfig) return null;
  const list = (async () => {
    const k = KubeCluster.forCluster(cluster, { timeoutMs: cluster.etcd.callTimeoutMs });
    const pending = await listPendingCsrs(k);
    return cluster.members.flatMap((m) => csrsOfNode(pending, m.name).map((c) => ({ name: c.metadata?.name ?? '?', node: m.name })));
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

/** The diagnosis of a status just taken (pure apart from nothing: see src/status/diagnose.ts). */
export function diagnoseStatus(cluster: ClusterConfig, report: StatusReport, certs: TargetReading[] | null, csrs: PendingCsr[] | null): Diagnosis[] {
  return diagnose({ cluster, report, certs, csrs });
}

export interface DiagnosedStatus {
  report: StatusReport;
  certs: TargetReading[] | null;
  diagnoses: Diagnosis[];
}

/**
 * Everything `/etcd status` looks at, for a caller that is not the status job
 * (the proactive watch): the etcd view, the certificates and the pending CSRs
 * read at once, the certificate line added to the warnings, and the diagnosis.
 */
export async function diagnosedStatus(cluster: ClusterConfig, pool: EtcdPool): Promise<DiagnosedStatus> {
  const view = viewCluster(cluster, pool);
  const certs = statusCertReadings(cluster, view).catch(() => null);
  const csrs = statusPendingCsrs(cluster, view);
  const [{ report }, readings, pending] = await Promise.all([view, certs, csrs]);
  const certLine = readings && statusCertLine(readings);
  if (certLine) report.warnings.push(certLine);
  return { report, certs: readings, diagnoses: diagnoseStatus(cluster, report, readings, pending) };
}
