import type { Inventory } from '../../config/schema.js';
import type { EtcdPool } from '../../etcd/pool.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { renderReferences } from '../../render/references-message.js';
import type { SlackPoster } from '../../slack/poster.js';
import { viewCluster } from '../cluster-view.js';
import { lookAtReferences } from '../references.js';

export interface DriftDeps {
  inventory: Inventory;
  pool: EtcdPool;
  slack: SlackPoster;
}

/**
 * `/etcd drift`: the files on each master that name etcd's members, compared
 * with the member list as `/etcd status` sees it. Reads only.
 */
export async function runDrift(env: JobEnvelope & { request: { name: 'drift' } }, deps: DriftDeps): Promise<string> {
  const cluster = deps.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  if (!cluster) {
    await deps.slack.ephemeral(env, `Cluster "${env.request.data.cluster}" is not in this worker's inventory. Type \`/etcd help\` for the known clusters.`);
    throw new Error(`unknown cluster ${env.request.data.cluster}`);
  }
  const { report } = await viewCluster(cluster, deps.pool);
  if (!report.members.length) {
    await deps.slack.post(env, { text: `No member of ${cluster.name} answers: without the member list there is nothing to compare the masters' files with. \`/etcd status ${cluster.name}\` shows why.`, blocks: [] });
    return 'no member list';
  }
  const looks = await lookAtReferences(cluster, report.members);
  await deps.slack.post(env, renderReferences(cluster.name, looks, { footer: `asked by <@${env.userId}> · job ${env.requestId}` }));
  return `${looks.filter((l) => l.state === 'drift').length} of ${looks.length} files disagree`;
}
