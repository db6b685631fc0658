import type { ClusterConfig } from '../config/schema.js';
import { hostPathsOf } from '../config/schema.js';
import { backupId, type BackupFacts, type BackupStore } from '../backup/store.js';
import { applyRetention, takeBackup } from '../backup/take.js';
import type { EtcdPool } from '../etcd/pool.js';
import { formatBytes } from '../status/assess.js';
import { clientUrlOf, viewCluster } from './cluster-view.js';
import { sshTargetOf } from './ssh-target.js';

export interface BackupOutcome {
  facts: BackupFacts;
  removed: string[];
}

/**
 * Takes a backup of a cluster from its leader (or any member that answers):
 * snapshot through the API, verified, and the host's etcd manifest and pki.
 */
export async function backupCluster(
  cluster: ClusterConfig,
  pool: EtcdPool,
  store: BackupStore,
  opts: { takenBy: string; id?: string; fromMember?: string; keep?: number },
): Promise<BackupOutcome> {
  const view = await viewCluster(cluster, pool);
  const answering = view.report.members.filter((m) => m.status && m.clientURLs.length > 0);
  const source = opts.fromMember ? answering.find((m) => m.name === opts.fromMember) : (answering.find((m) => m.isLeader) ?? answering[0]);
  if (!source) throw new Error(opts.fromMember ? `${opts.fromMember} does not answer; nothing to snapshot from` : 'no member answers; nothing to snapshot from');
  let id = opts.id ?? backupId(new Date());
  if (!opts.id) for (let n = 2; await store.get(cluster.name, id); n++) id = `${backupId(new Date())}-${n}`;
  const conf = cluster.members.find((m) => m.name === source.name);
  const paths = conf ? hostPathsOf(cluster, conf) : null;
  const facts = await takeBackup(store, {
    cluster: cluster.name,
    id,
    takenBy: opts.takenBy,
    fromMember: source.name,
    client: pool.client(cluster, clientUrlOf(cluster, source)),
    host: conf && paths ? { target: sshTargetOf(conf), manifest: `${paths.manifestsDir}/etcd.yaml`, pkiDir: paths.pkiDir } : null,
  });
  const removed = opts.keep ? await applyRetention(store, cluster.name, opts.keep) : [];
  return { facts, removed };
}

/** The facts of a backup as the channel reads them. */
export function describeBackup(f: BackupFacts): string {
  return [
    `*${f.id}* of *${f.cluster}* from ${f.fromMember}: ${formatBytes(f.bytes)}, revision ${f.revision}, ${f.totalKeys} db keys (all revisions), hash ${f.hash}, sha256 \`${f.sha256.slice(0, 16)}…\` verified`,
    `files: \`${f.snapshotFile}\`${f.resourcesFile ? `, \`${f.resourcesFile}\` (etcd manifest and pki)` : ''}${f.note ? `\n:warning: ${f.note}` : ''}`,
  ].join('\n');
}
