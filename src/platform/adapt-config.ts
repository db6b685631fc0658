import type { ConfigSide } from './types.js';

/** etcd's flags that carry the host's own address: what it advertises and listens on. */
export const URL_FLAGS = ['advertise-client-urls', 'listen-client-urls', 'initial-advertise-peer-urls', 'listen-peer-urls', 'listen-metrics-urls'];

const URL_RE = /^([a-z][a-z0-9+.-]*:\/\/)(\[[^\]]*\]|[^:/?#]*)(.*)$/i;

const bare = (h: string) => h.replace(/^\[(.*)\]$/, '$1').toLowerCase();

/** One URL's host as it is written in a URL (an IPv6 address in brackets). */
const asUrlHost = (h: string) => (h.includes(':') ? `[${h}]` : h);

/**
 * A comma-separated URL list with every URL on host `from` moved to `to`
 * (scheme, port and path kept); URLs on other hosts (127.0.0.1, a VIP) stay
 * as they are.
 */
export function withUrlHost(urls: string, from: string, to: string): string {
  return urls
    .split(',')
    .map((u) => {
      const m = URL_RE.exec(u.trim());
      return m && bare(m[2]!) === bare(from) ? `${m[1]}${asUrlHost(to)}${m[3]}` : u;
    })
    .join(',');
}

/** `path` moved from under `fromDir` to under `toDir`; undefined when it is not under `fromDir`. */
export function rebased(path: string, fromDir: string, toDir: string): string | undefined {
  const f = fromDir.replace(/\/+$/, '');
  if (path === f) return toDir;
  return path.startsWith(`${f}/`) ? `${toDir.replace(/\/+$/, '')}${path.slice(f.length)}` : undefined;
}

/**
 * The flags that make a peer's config this member's (see Platform.adaptConfig),
 * read through the platform's `flag` and to be written with its `withFlags`:
 * name and data dir, the URL flags the peer sets with its address replaced,
 * the certificate flags it sets pointed at this member's files (`pkiFlags`,
 * where the profile issues them),
 * and any other path under the peer's data dir (the WAL dir) moved to this one's.
 */
export function adaptedFlags(flag: (name: string) => string | undefined, from: ConfigSide, to: ConfigSide, pkiFlags: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { name: to.name, 'data-dir': to.dataDir };
  for (const f of URL_FLAGS) {
    const v = flag(f);
    if (v !== undefined) out[f] = withUrlHost(v, from.host, to.host);
  }
  for (const [f, path] of Object.entries(pkiFlags)) {
    const v = flag(f);
    // This member's files, where its certificates are issued, whatever directory the peer keeps its own in.
    if (v !== undefined) out[f] = path;
  }
  const wal = flag('wal-dir');
  if (wal !== undefined) out['wal-dir'] = rebased(wal, from.dataDir, to.dataDir) ?? wal;
  return out;
}

/**
 * Why an adapted config would not make the member itself known (null: it
 * would): every URL it advertises, peer and client, must be on its own host
 * (the inventory's address, or the host of the peer URL `member add`
 * registered) or loopback. A peer whose config names itself otherwise than the inventory
 * does (a host name where the inventory has its address) keeps its URLs
 * through adaptedFlags, and a member started on them would advertise the
 * peer's: refused before it is written.
 */
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function adaptedUrlProblem(flag: (name: string) => string | undefined, peerUrl: string, host: string): string | null {
  const own = new Set([bare(host), bare(URL_RE.exec(peerUrl)?.[2] ?? host)]);
  for (const f of ['initial-advertise-peer-urls', 'advertise-client-urls']) {
    // Loopback URLs are kept as the peer has them (adaptedFlags): the same on every host. So is a host written as a
    // shell variable (OpenShift 4's https://${ETCD_IPV4_ADDRESS}:2380), which each host's own discovery file fills in.
    const hostOf = (u: string) => bare(URL_RE.exec(u)?.[2] ?? '');
    const others = (flag(f) ?? '').split(',').map((u) => u.trim()).filter((u) => u && !own.has(hostOf(u)) && !LOOPBACK.test(hostOf(u)) && !hostOf(u).startsWith('$'));
    if (others.length) return `its ${f} would be ${others.join(',')}, not on ${host}`;
  }
  return null;
}
