import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { oneLine } from '../errors.js';
import { platformOf } from '../platform/index.js';
import { listenAddrsOf } from '../status/members.js';
import { sshExec } from '../ssh/exec.js';
import { quoteScript, sh } from '../ssh/shell.js';
import { aliveFunction } from './etcd-alive.js';
import { sshTargetOf } from './ssh-target.js';

/** What a read-only look at a member's host found. */
export type HostProbe =
  | { name: string; reachable: true; listening: boolean; why?: string; hasConfig: boolean; hasData: boolean; offlineRevision: number | null }
  | { name: string; reachable: false; error: string };

/**
 * Looks at a member's host over SSH without changing anything: may its etcd
 * still run (anything on its client or peer addresses, from the inventory, the
 * member list and its manifest, whatever the ports; an etcd process on its data
 * dir; "cannot tell" counts as running), is its config (manifest, etcd.conf) in place, is there a
 * data dir, and (only when etcd is surely stopped, since a running etcd holds
 * the database lock) the revision of its database read offline by etcdctl.
 */
export async function probeHost(cluster: ClusterConfig, m: MemberConfig, rows: { name: string; peerURLs: string[]; clientURLs: string[] }[] = []): Promise<HostProbe> {
  const p = platformOf(cluster).paths(m);
  const db = `${p.dataDir}/member/snap/db`;
  const config = p.config;
  const script = [
    'set -euo pipefail',
    aliveFunction({ addrs: listenAddrsOf(cluster.etcd.endpoints, m, rows), dataDir: p.dataDir, configs: [config], host: m.host }),
    'alive=0; why=$(medic_etcd_alive) && alive=1',
    'echo "listening=$alive"; echo "why=$why"',
    sh`if [ -e ${config} ]; then echo config=1; else echo config=0; fi`,
    sh`if [ -e ${db} ]; then echo data=1; else echo data=0; fi`,
    sh`if [ -e ${db} ] && [ "$alive" = 0 ] && command -v etcdctl >/dev/null; then echo "status=$(ETCDCTL_API=3 timeout 20 etcdctl snapshot status ${db} -w json 2>/dev/null || true)"; fi`,
  ].join('\n');
  try {
    const r = await sshExec(sshTargetOf(m), `bash -c ${quoteScript(script)}`, { connectTimeoutMs: 5000, commandTimeoutMs: 30_000 });
    const kv = new Map(r.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
    if (r.code !== 0 || !kv.has('listening')) {
      // Reached but not understood: unsure counts as running, never as "confirmed down".
      const why = `may run (cannot tell: the look at the host failed with exit ${r.code}: ${oneLine((r.stderr || r.stdout).trim())})`;
      return { name: m.name, reachable: true, listening: true, why, hasConfig: false, hasData: false, offlineRevision: null };
    }
    const rev = /"revision":(\d+)/.exec(kv.get('status') ?? '');
    const listening = kv.get('listening') === '1';
    return { name: m.name, reachable: true, listening, why: listening ? kv.get('why') : undefined, hasConfig: kv.get('config') === '1', hasData: kv.get('data') === '1', offlineRevision: rev ? Number(rev[1]) : null };
  } catch (err) {
    return { name: m.name, reachable: false, error: (err as Error).message };
  }
}
