import { platformOf } from '../platform/index.js';
import type { ClusterConfig } from '../config/schema.js';
import { backupId, PARTIAL_STALE_MS, type BackupFacts, type BackupStore, type StalePartial } from '../backup/store.js';
import { applyRetention, takeBackup, type RetentionOutcome } from '../backup/take.js';
import type { EtcdPool } from '../etcd/pool.js';
import type { Logger } from '../log.js';
import type { RunStore } from '../runbook/store.js';
import { TERMINAL, type Run } from '../runbook/types.js';
import { formatBytes } from '../status/assess.js';
import { clientUrlOf, viewCluster } from './cluster-view.js';
import { sshTargetOf } from './ssh-target.js';

export interface BackupOutcome extends RetentionOutcome {
  facts: BackupFacts;
  /** Partial snapshot files left by backups that were cut off, removed after this one (see sweepPartials). */
  partials: { removed: StalePartial[]; error?: string };
}

/** How long the snapshot stream may send nothing before the member counts as frozen. */
export const stallMsOf = (cluster: ClusterConfig) => Math.max(10_000, 5 * cluster.etcd.callTimeoutMs);

/** How old a partial snapshot file must be to count as left behind: far beyond any live stream's silence. */
export const partialStaleMsOf = (cluster: ClusterConfig) => Math.max(PARTIAL_STALE_MS, 10 * stallMsOf(cluster));

/** Removes the partial snapshot files backups of `cluster` left when they were cut off; never throws. */
export async function sweepPartials(store: BackupStore, cluster: ClusterConfig, log: Logger): Promise<BackupOutcome['partials']> {
  try {
    const removed = (await store.sweepPartials?.(cluster.name, partialStaleMsOf(cluster))) ?? [];
    for (const p of removed) log.warn({ cluster: p.cluster, file: p.file, bytes: p.bytes, lastWritten: p.modifiedAt }, 'removed a partial snapshot left by a backup that was cut off; it was never a backup');
    return { removed };
  } catch (err) {
    log.error({ cluster: cluster.name, err: (err as Error).message }, 'could not look for partial snapshots left in the backup store');
    return { removed: [], error: (err as Error).message };
  }
}

/**
 * Takes a backup of a cluster from its leader (or any member that answers):
 * snapshot through the API, verified, and the host files the platform needs
 * to rebuild the member (kubeadm: its manifest and pki; systemd: /etc/etcd).
 */
export async function backupCluster(
  cluster: ClusterConfig,
  pool: EtcdPool,
  store: BackupStore,
  opts: { takenBy: string; id?: string; fromMember?: string; keep?: number; signal?: AbortSignal; log: Logger },
): Promise<BackupOutcome> {
  const view = await viewCluster(cluster, pool);
  const answering = view.report.members.filter((m) => m.status && m.clientURLs.length > 0);
  const source = opts.fromMember ? answering.find((m) => m.name === opts.fromMember) : (answering.find((m) => m.isLeader) ?? answering[0]);
  if (!source) throw new Error(opts.fromMember ? `${opts.fromMember} does not answer; nothing to snapshot from` : 'no member answers; nothing to snapshot from');
  let id = opts.id ?? backupId(new Date());
  if (!opts.id) for (let n = 2; await store.get(cluster.name, id); n++) id = `${backupId(new Date())}-${n}`;
  const conf = cluster.members.find((m) => m.name === source.name);
  const platform = platformOf(cluster);
  const facts = await takeBackup(store, {
    cluster: cluster.name,
    id,
    takenBy: opts.takenBy,
    fromMember: source.name,
    client: pool.client(cluster, clientUrlOf(cluster, source)),
    // Host files only where the platform keeps some on a host the bot reaches (a StatefulSet's members have none).
    host: conf?.ssh && platform.backupPaths(conf).length ? { target: sshTargetOf(conf), paths: platform.backupPaths(conf) } : null,
    stream: { signal: opts.signal, stallMs: stallMsOf(cluster) },
  });
  const retention = opts.keep ? await applyRetention(store, cluster.name, opts.keep) : { removed: [], kept: [] };
  return { facts, ...retention, partials: await sweepPartials(store, cluster, opts.log) };
}

/** The run that holds a cluster (one at a time), if it has not ended. */
export async function unfinishedRunOn(runs: RunStore, cluster: string): Promise<Run | null> {
  const holder = await runs.lockHolder(cluster);
  const run = holder ? await runs.get(holder) : null;
  return run && !TERMINAL.includes(run.status) ? run : null;
}

/**
 * The backups an unfinished run on the cluster names in its steps (the one a
 * restore restores, the one its first step takes): retention keeps them.
 */
export async function backupsInUse(runs: RunStore, cluster: string): Promise<Map<string, string>> {
  const run = await unfinishedRunOn(runs, cluster);
  const used = new Map<string, string>();
  if (!run) return used;
  for (const s of run.steps) {
    const id = 'backupId' in s.params ? s.params.backupId : undefined;
    if (typeof id === 'string' && !used.has(id)) used.set(id, `run \`${run.runId}\` (${run.title}, ${run.status.replace('_', ' ')}) uses it`);
  }
  return used;
}

/** What retention did, as the channel reads it; empty when it had nothing to do. */
export function describeRetention(r: RetentionOutcome, keep: number): string {
  const lines: string[] = [];
  if (r.removed.length) lines.push(`Retention (keep ${keep}): removed ${r.removed.join(', ')}.`);
  for (const k of r.kept) lines.push(`Retention (keep ${keep}) kept ${k.id}: ${k.why}.`);
  return lines.join('\n');
}

/** What the sweep of partial files did, as the channel reads it; empty when it had nothing to do. */
export function describePartials(p: BackupOutcome['partials']): string {
  const lines = p.removed.map((x) => `Removed \`${x.file}\` (${formatBytes(x.bytes)}, last written ${x.modifiedAt}): left by a backup that was cut off while streaming; it was never a backup.`);
  if (p.error) lines.push(`Could not look for partial snapshots left in the store: ${p.error}.`);
  return lines.join('\n');
}

/** The facts of a backup as the channel reads them. */
export function describeBackup(f: BackupFacts): string {
  return [
    `*${f.id}* of *${f.cluster}* ${originOf(f)}: ${formatBytes(f.bytes)}, revision ${f.revision}, ${f.totalKeys} db keys (all revisions), hash ${f.hash}, sha256 \`${f.sha256.slice(0, 16)}…\` verified`,
    `files: \`${f.snapshotFile}\`${f.resourcesFile ? `, \`${f.resourcesFile}\` (${resourcesOf(f)})` : ''}${f.note ? `\n:warning: ${f.note}` : ''}`,
  ].join('\n');
}

/** Where a backup came from: the member the bot took it from, or the master and directory it was imported from. */
export function originOf(f: BackupFacts): string {
  const i = f.imported;
  if (f.source !== 'imported' || !i) return `from ${f.fromMember}`;
  return `imported from ${i.member} (${i.host}) ${i.dir}/${i.snapshotFile}, taken by cluster-backup.sh at ${i.stampedAt.replace('T', ' ').replace('.000Z', ' UTC')} (the time in its name)`;
}

/** What a backup's archive beside the snapshot holds. */
export function resourcesOf(f: BackupFacts): string {
  if (f.source !== 'imported') return "the member's etcd config and certificates";
  const dirs = f.imported?.resourceDirs ?? [];
  return `OpenShift's static pod resources${dirs.length ? `: ${dirs.slice(0, 6).join(', ')}${dirs.length > 6 ? ` and ${dirs.length - 6} more` : ''}` : ''}`;
}
