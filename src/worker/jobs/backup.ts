import type { JobEnvelope } from '../../queue/jobs.js';
import { formatBytes } from '../../status/assess.js';
import { backupCluster, describeBackup, describePartials, describeRetention, unfinishedRunOn } from '../backups.js';
import type { WorkerContext } from '../context.js';
import { told } from '../job-failed.js';
import { replyTo } from '../reply-to.js';

type BackupJob = JobEnvelope & { request: { name: 'backup' } };
type ListJob = JobEnvelope & { request: { name: 'list-backups' } };

const section = (text: string) => [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }];

/** `/etcd backup` and scheduled backups: take, verify, archive host files, apply retention, tell the channel. */
export async function runBackup(env: BackupJob, ctx: WorkerContext): Promise<string> {
  const cluster = ctx.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  const who = env.request.data.scheduled ? 'the backup schedule' : `<@${env.userId}>`;
  const tell = async (text: string) => {
    if (env.channelId) await ctx.chat.post(env.channelId, { text, blocks: section(text) });
    else ctx.log.info({ cluster: env.request.data.cluster }, text);
  };
  if (!cluster) {
    await tell(`:x: Backup of ${env.request.data.cluster} failed: the cluster is not in this worker's inventory.`);
    return 'unknown cluster';
  }
  // A run on the cluster (replace, restore) stops etcd, fences or restores members and takes its own
  // backup first: a scheduled snapshot in the middle would catch a half-changed cluster, or fail. The
  // schedule skips while a run is open; a person asking explicitly (often right before approving a
  // destructive step) gets the backup, and retention never prunes what the run uses.
  const run = await unfinishedRunOn(ctx.store, cluster.name);
  if (run && env.request.data.scheduled) {
    await tell(`:fast_forward: Scheduled backup of ${cluster.name} skipped: run \`${run.runId}\` (${run.title}) is in progress on this cluster (${run.status.replace('_', ' ')}), and a snapshot in the middle of it could catch etcd stopped or half-restored. The schedule resumes after the run ends; \`/etcd backup ${cluster.name}\` takes one now if you need it.`);
    return `skipped: run ${run.runId} in progress`;
  }
  try {
    const { facts, removed, kept, partials } = await backupCluster(cluster, ctx.pool, ctx.backups, {
      takenBy: env.request.data.scheduled ? 'schedule' : env.userId,
      keep: ctx.inventory.backups.keep,
      log: ctx.log,
    });
    const retention = [describeRetention({ removed, kept }, ctx.inventory.backups.keep), describePartials(partials)].filter(Boolean).join('\n');
    const during = run ? `\nRun \`${run.runId}\` (${run.title}) is in progress on this cluster; the backups it uses are kept whatever the retention.` : '';
    await tell(`:floppy_disk: Backup taken for ${who}: ${describeBackup(facts)}${retention ? `\n${retention}` : ''}${during}\nRestore with \`/etcd restore ${facts.id} ${cluster.name}\` or \`/etcd restore-quorum ${cluster.name} --snapshot ${facts.id}\`.`);
    return `backup ${facts.id}`;
  } catch (err) {
    const msg = (err as Error).message;
    const hint = /no space left|disk quota/i.test(msg) ? ` Free space where \`backups.dir\` lives (${ctx.inventory.backups.dir}) or lower \`backups.keep\`, then \`/etcd backup ${cluster.name}\` again.` : '';
    await tell(`:x: Backup of ${cluster.name} for ${who} failed: ${msg}. Nothing was kept.${hint}`);
    throw told(err as Error);
  }
}

export async function runListBackups(env: ListJob, ctx: WorkerContext): Promise<string> {
  const all = await ctx.backups.list(env.request.data.cluster);
  const lines = all.slice(0, 30).map((f) =>
    f.source === 'imported' && f.imported
      ? `• \`${f.id}\` ${formatBytes(f.bytes)}, revision ${f.revision}, ${f.totalKeys} db keys, imported from ${f.imported.member}:${f.imported.dir} by <@${f.takenBy}> (${f.imported.snapshotFile}${f.resourcesFile ? ` + ${f.imported.resourcesFile}` : ', no static_kuberesources'}; kept whatever the retention)`
      : `• \`${f.id}\` ${formatBytes(f.bytes)}, revision ${f.revision}, ${f.totalKeys} db keys, from ${f.fromMember}, by ${f.takenBy === 'schedule' ? 'schedule' : `<@${f.takenBy}>`}${f.resourcesFile ? '' : ' (no host files)'}`,
  );
  const text = all.length
    ? `*Backups of ${env.request.data.cluster}* (newest first, ${all.length} in all, keeping ${ctx.inventory.backups.keep}):\n${lines.join('\n')}${all.length > 30 ? `\n… and ${all.length - 30} older` : ''}`
    : `No backups of ${env.request.data.cluster} yet. \`/etcd backup ${env.request.data.cluster}\` takes one.`;
  await ctx.chat.ephemeral(replyTo(env), text);
  return `${all.length} backups`;
}
