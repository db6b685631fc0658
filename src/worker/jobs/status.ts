import type { Inventory } from '../../config/schema.js';
import type { EtcdPool } from '../../etcd/pool.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { statusCertLine, statusCertReadings } from '../../certs/status-check.js';
import { renderStatus } from '../../render/status-message.js';
import type { StatusReport } from '../../status/assess.js';
import { viewCluster } from '../cluster-view.js';
import { observeStatus } from '../../metrics/observe.js';
import type { Chat } from '../../chat/port.js';
import { replyTo } from '../reply-to.js';
import { withDiagnosis } from '../../render/diagnosis-message.js';
import { diagnoseStatus, statusPendingCsrs } from '../status-diagnosis.js';

export interface StatusDeps {
  inventory: Inventory;
  pool: EtcdPool;
  chat: Chat;
  /** Read certificate expiry beside the etcd view, for the warning line (on unless false: the bench compares). */
  certCheck?: boolean;
}

/** Asks every member, judges the answers, posts one message to the channel. */
export async function runStatus(env: JobEnvelope & { request: { name: 'status' } }, deps: StatusDeps): Promise<StatusReport> {
  const cluster = deps.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  if (!cluster) {
    // The inventory changed between the ack and the job (a worker with another config).
    await deps.chat.ephemeral(replyTo(env), `Cluster "${env.request.data.cluster}" is not in this worker's inventory. Type \`/etcd help\` for the known clusters.`);
    throw new Error(`unknown cluster ${env.request.data.cluster}`);
  }
  // Through viewCluster: an election in progress is waited out instead of reported as a lost quorum.
  const view = viewCluster(cluster, deps.pool);
  // Certificates are read while the members are asked: status waits for them at most a short grace after the members, never past the deadline.
  const certs = deps.certCheck === false ? Promise.resolve(null) : statusCertReadings(cluster, view).catch(() => null);
  // Pending CSRs of the masters, for the diagnosis: listed meanwhile, waited for no longer than the certificates.
  const csrs = deps.certCheck === false ? Promise.resolve(null) : statusPendingCsrs(cluster, view);
  const [{ report }, readings, pending] = await Promise.all([view, certs, csrs]);
  const certLine = readings && statusCertLine(readings);
  if (certLine) report.warnings.push(certLine);
  observeStatus(cluster, report);
  const diagnoses = diagnoseStatus(cluster, report, readings, pending);
  await deps.chat.answer(replyTo(env), withDiagnosis(renderStatus(report, `asked by <@${env.userId}> · job ${env.requestId}`), diagnoses, cluster.name));
  return report;
}
