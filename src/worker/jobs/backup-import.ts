import { importBackup, ImportRefused } from '../../backup/import.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { describeBackup, stallMsOf } from '../backups.js';
import type { WorkerContext } from '../context.js';
import { told } from '../job-failed.js';
import { sshTargetOf } from '../ssh-target.js';

type ImportJob = JobEnvelope & { request: { name: 'import-backup' } };

const section = (text: string) => [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }];

/** `/etcd backup [cluster] import <member> <path>`: an OpenShift cluster-backup.sh pair read from a master into the store. */
export async function runImportBackup(env: ImportJob, ctx: WorkerContext): Promise<string> {
  const { cluster: clusterName, member: memberName, path } = env.request.data;
  const tell = async (text: string) => {
    await ctx.chat.post(env.channelId, { text, blocks: section(text) });
  };
  const again = `\`/etcd backup ${clusterName} import <member> <directory or snapshot_<ts>.db path>\``;
  const cluster = ctx.inventory.clusters.find((c) => c.name === clusterName);
  if (!cluster) {
    await tell(`:x: Import into ${clusterName} refused: the cluster is not in this worker's inventory. Nothing was imported.`);
    return 'unknown cluster';
  }
  const member = cluster.members.find((m) => m.name === memberName);
  if (!member) {
    await tell(`:x: Import refused: ${memberName} is not a member of ${cluster.name} in this worker's inventory (${cluster.members.map((m) => m.name).join(', ')}). Nothing was imported.`);
    return 'unknown member';
  }
  try {
    const r = await importBackup(ctx.backups, { cluster: cluster.name, member: member.name, target: sshTargetOf(member), path, importedBy: env.userId, stallMs: stallMsOf(cluster) });
    const f = r.facts;
    const lines: string[] = [];
    if (r.already) {
      lines.push(`:information_source: ${r.chosen.snapshot.name} from ${member.name}:${r.dir} is already in the store as backup *${f.id}* of *${cluster.name}* (same sha256): nothing new was imported.`);
    } else {
      lines.push(`:inbox_tray: Backup imported for <@${env.userId}>: ${describeBackup(f)}`);
    }
    if (r.chosen.others.length) {
      const shown = r.chosen.others.slice(0, 5);
      lines.push(
        `${r.dir} also holds ${shown.map((n) => `\`${n}\``).join(', ')}${r.chosen.others.length > shown.length ? ` and ${r.chosen.others.length - shown.length} more` : ''}; ${path.endsWith('.db') ? 'this one was named' : `the newest, ${r.chosen.snapshot.name}, was taken (as OpenShift's cluster-restore.sh takes the last one)`}. To import another: \`/etcd backup ${cluster.name} import ${member.name} ${r.dir.replace(/\/$/, '')}/${shown[0]}\`.`,
      );
    }
    if (r.chosen.unfinished.length) lines.push(`Not imported: ${r.chosen.unfinished.map((n) => `\`${n}\``).join(', ')}, a snapshot cluster-backup.sh was still writing or died writing.`);
    lines.push(`Restore with \`/etcd restore ${f.id} ${cluster.name}\` or \`/etcd restore-quorum ${cluster.name} --snapshot ${f.id}\`.`);
    await tell(lines.join('\n'));
    return r.already ? `already in the store as ${f.id}` : `imported ${f.id}`;
  } catch (err) {
    const msg = (err as Error).message.replace(/\.$/, '');
    if (err instanceof ImportRefused) {
      await tell(`:x: Import of ${path} from ${member.name} for <@${env.userId}> refused: ${msg}. Nothing was imported; the host was only read. Type ${again} again once fixed.`);
      return `refused: ${msg}`;
    }
    const hint = /no space left|disk quota/i.test(msg) ? ` Free space where \`backups.dir\` lives (${ctx.inventory.backups.dir}), then import again.` : '';
    await tell(`:x: Import of ${path} from ${member.name} for <@${env.userId}> failed: ${msg}. Nothing was imported; the host was only read.${hint}`);
    throw told(err as Error);
  }
}
