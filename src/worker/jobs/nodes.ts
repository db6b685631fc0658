import type { Inventory } from '../../config/schema.js';
import type { EtcdPool } from '../../etcd/pool.js';
import { probeCluster } from '../../etcd/probe.js';
import { KubeCluster } from '../../kube/client.js';
import { kubeShortfall, viewControlPlane } from '../../kube/control-plane.js';
import { KubeError } from '../../kube/errors.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { renderNodes, renderNoKube } from '../../render/nodes-message.js';
import type { Chat } from '../../chat/port.js';
import { replyTo } from '../reply-to.js';
import { refuseUnknownCluster } from './unknown-cluster.js';
import { assessCluster } from '../../status/assess.js';
import { checkPeerUrls, type PeerCheck } from '../../status/peer-drift.js';
import { resolvePeerHosts } from '../dns-lookup.js';

export interface NodesDeps {
  inventory: Inventory;
  pool: EtcdPool;
  chat: Chat;
}

/**
 * `/etcd nodes`: the Kubernetes view of the cluster (control-plane nodes,
 * kube-apiserver /readyz on each master, pending CSRs) and each etcd member's
 * peer URL against its node's addresses, in one message to the channel.
 */
export async function runNodes(env: JobEnvelope & { request: { name: 'nodes' } }, deps: NodesDeps): Promise<string> {
  const cluster = deps.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  if (!cluster) {
    return refuseUnknownCluster(deps.chat, replyTo(env), env.request.data.cluster);
  }
  let k: KubeCluster;
  try {
    k = KubeCluster.forCluster(cluster);
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    await deps.chat.answer(replyTo(env), renderNoKube(cluster.name, err.reason));
    return 'not configured';
  }
  // etcd's member list is asked beside Kubernetes: neither waits for the other, and either may be down.
  const [view, report] = await Promise.all([viewControlPlane(k, cluster), probeCluster(cluster, deps.pool).then((p) => assessCluster(cluster, p))]);

  let peers: PeerCheck | { skipped: string };
  const members = report.members.filter((m) => m.idHex !== null).map((m) => ({ name: m.started ? m.name : '', idHex: m.idHex, peerURLs: m.peerURLs }));
  if (view.nodesError) peers = { skipped: `the nodes could not be listed (${view.nodesError.reason})` };
  else if (members.length === 0) peers = { skipped: 'no etcd member answered, so the member list is unknown (`/etcd status` says more)' };
  else peers = checkPeerUrls(members, view.masters, view.otherNodes, await resolvePeerHosts(members));

  await deps.chat.answer(replyTo(env), renderNodes(view, peers, `asked by <@${env.userId}> · job ${env.requestId}`));
  const missing = kubeShortfall(view, new Date()).length;
  return `${missing ? `not ready (${missing})` : 'ready'}${'problems' in peers && peers.problems.length ? `, ${peers.problems.length} peer URL drift` : ''}`;
}
