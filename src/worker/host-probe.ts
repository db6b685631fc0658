import { hostPathsOf, type ClusterConfig, type MemberConfig } from '../config/schema.js';
import { sshExec } from '../ssh/exec.js';
import { quoteScript, sh } from '../ssh/shell.js';
import { sshTargetOf } from './ssh-target.js';

/** What a read-only look at a member's host found. */
export type HostProbe =
  | { name: string; reachable: true; listening: boolean; hasManifest: boolean; hasData: boolean; offlineRevision: number | null }
  | { name: string; reachable: false; error: string };

/**
 * Looks at a member's host over SSH without changing anything: is etcd
 * listening, is its manifest in place, is there a data dir, and (only when etcd
 * is stopped, since a running etcd holds the database lock) the revision of its
 * database read offline by etcdctl.
 */
export async function probeHost(cluster: ClusterConfig, m: MemberConfig): Promise<HostProbe> {
  const p = hostPathsOf(cluster, m);
  const db = `${p.dataDir}/member/snap/db`;
  const script = [
    sh`if (exec 3<>/dev/tcp/${m.host}/2379) 2>/dev/null; then echo listening=1; else echo listening=0; fi`,
    sh`if [ -e ${p.manifestsDir}/etcd.yaml ]; then echo manifest=1; else echo manifest=0; fi`,
    sh`if [ -e ${db} ]; then echo data=1; else echo data=0; fi`,
    sh`if [ -e ${db} ] && ! (exec 3<>/dev/tcp/${m.host}/2379) 2>/dev/null && command -v etcdctl >/dev/null; then echo "status=$(ETCDCTL_API=3 timeout 20 etcdctl snapshot status ${db} -w json 2>/dev/null)"; fi`,
  ].join('\n');
  try {
    const r = await sshExec(sshTargetOf(m), `bash -c ${quoteScript(script)}`, { connectTimeoutMs: 5000, commandTimeoutMs: 30_000 });
    const kv = new Map(r.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
    const rev = /"revision":(\d+)/.exec(kv.get('status') ?? '');
    return { name: m.name, reachable: true, listening: kv.get('listening') === '1', hasManifest: kv.get('manifest') === '1', hasData: kv.get('data') === '1', offlineRevision: rev ? Number(rev[1]) : null };
  } catch (err) {
    return { name: m.name, reachable: false, error: (err as Error).message };
  }
}
