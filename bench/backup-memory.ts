import type { ClusterConfig } from '../src/config/schema.js';
import { openEndpoint } from '../src/etcd/pool.js';
import { postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import type { LabStack } from '../src/lab/stack.js';

export interface BackupMemory {
  dbBytes: number;
  snapshotBytes: number;
  rssBefore: number;
  rssPeak: number;
  heapPeak: number;
  ms: number;
  fillMs: number;
}

/** The database size the leader reports (etcdctl endpoint status), in bytes. */
async function dbSize(stack: LabStack): Promise<number> {
  const { stdout } = await stack.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [stack.lab.hosts[0]!.clientUrl]);
  return Number(/"dbSize":(\d+)/.exec(stdout)?.[1] ?? 0);
}

/**
 * Fills etcd with 1 MB values until its database is at least `targetBytes`
 * (under the 2 GB quota the lab starts etcd with), then has the bot take a
 * backup and samples this process's RSS (the worker runs in it; the bot apart) every 20 ms
 * from just before the command until the channel hears the backup is taken.
 */
export async function backupMemory(stack: LabStack, eventsUrl: string, cluster: ClusterConfig, targetBytes: number): Promise<BackupMemory> {
  const t0 = performance.now();
  const client = openEndpoint(cluster, stack.lab.hosts[0]!.clientUrl, 60_000);
  const value = Buffer.alloc(1024 * 1024, 0x62);
  let n = 0;
  while ((await dbSize(stack)) < targetBytes) {
    for (let i = 0; i < 64; i += 8) await Promise.all(Array.from({ length: 8 }, () => client.put(`/bench/big/${n++}`).value(value)));
  }
  client.close();
  const fillMs = performance.now() - t0;
  const dbBytes = await dbSize(stack);

  global.gc?.();
  await new Promise((r) => setTimeout(r, 500));
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  let heapPeak = 0;
  const sample = setInterval(() => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed + m.arrayBuffers);
  }, 20);
  const since = stack.slack.lastSeq;
  const t1 = performance.now();
  const channel = 'CBENCHBACKUP';
  await postSigned(eventsUrl, stack.secret, slashCommandBody({ text: 'backup', userId: 'UALICE', channelId: channel, responseUrl: stack.slack.responseUrl('bench-backup') }));
  const msg = await stack.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === channel && /Backup (taken|of)/.test(String(r.body.text)), 600_000, since);
  const ms = performance.now() - t1;
  clearInterval(sample);
  const text = String(msg.body.text);
  if (!text.includes('Backup taken')) throw new Error(`the bench backup failed: ${text}`);
  const size = /: ([\d.]+) (KB|MB|GB), revision/.exec(text);
  const snapshotBytes = size ? Number(size[1]) * 1024 ** ({ KB: 1, MB: 2, GB: 3 } as const)[size[2] as 'KB' | 'MB' | 'GB'] : 0;
  return { dbBytes, snapshotBytes, rssBefore, rssPeak, heapPeak, ms, fillMs };
}

export function printBackupMemory(m: BackupMemory): void {
  const mb = (b: number) => `${(b / 1024 ** 2).toFixed(0)} MB`;
  console.log(
    `\nbackup of a ${mb(m.dbBytes)} database (snapshot ${mb(m.snapshotBytes)}; filled in ${(m.fillMs / 1000).toFixed(0)} s): ${(m.ms / 1000).toFixed(1)} s, ${(m.snapshotBytes / 1024 ** 2 / (m.ms / 1000)).toFixed(0)} MB/s`,
  );
  console.log(
    `worker RSS: ${mb(m.rssBefore)} before, ${mb(m.rssPeak)} peak during the backup (+${mb(m.rssPeak - m.rssBefore)}, ${(m.rssPeak / m.rssBefore).toFixed(2)}x; growth = ${((m.rssPeak - m.rssBefore) / m.snapshotBytes).toFixed(3)} of the snapshot size); JS heap + buffers peak ${mb(m.heapPeak)}`,
  );
}
