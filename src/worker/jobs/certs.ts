import { checkCerts, countReadings, listedMembers } from '../../certs/check.js';
import type { Inventory } from '../../config/schema.js';
import type { EtcdPool } from '../../etcd/pool.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { renderCerts } from '../../render/certs-message.js';
import type { Chat } from '../../chat/port.js';
import { replyTo } from '../reply-to.js';
import { refuseUnknownCluster } from './unknown-cluster.js';
import { viewCluster } from '../cluster-view.js';

export interface CertsDeps {
  inventory: Inventory;
  pool: EtcdPool;
  chat: Chat;
}

const KUBECONFIG_HINT = 'Set `clusters[].kubeconfig` in the inventory (a kubeconfig file, or "in-cluster" when the bot runs in that cluster) to check them.';

/**
 * `/etcd certs`: reads every certificate a recovery depends on from real TLS
 * handshakes (the member list, for the peer URLs, comes from the same view as
 * `/etcd status`) and posts one message, worst first.
 */
export async function runCerts(env: JobEnvelope & { request: { name: 'certs' } }, deps: CertsDeps): Promise<string> {
  const cluster = deps.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  if (!cluster) {
    return refuseUnknownCluster(deps.chat, replyTo(env), env.request.data.cluster);
  }
  const members = viewCluster(cluster, deps.pool).then(({ report }) => listedMembers(report));
  const check = await checkCerts(cluster, members);
  await deps.chat.answer(replyTo(env), renderCerts(check, { footer: `asked by <@${env.userId}> · job ${env.requestId}`, kubeconfigHint: cluster.kubeconfig ? undefined : KUBECONFIG_HINT }));
  const n = countReadings(check.readings, check.at);
  return `${check.readings.length} certificates: ${n.expired + n.notYetValid} invalid, ${n.warn} within 30 days, ${n.unreadable} unreadable`;
}
