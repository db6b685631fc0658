import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { PeerMember, Resolved } from '../status/peer-drift.js';
import { hostOfUrl } from '../status/members.js';

/** Looks a name up: its addresses, or a rejection whose `code` says why (ENOTFOUND, …). Tests pass their own. */
export type HostLookup = (name: string) => Promise<string[]>;

/** The worker's resolver, as every other program on its machine resolves (getaddrinfo: /etc/hosts, then DNS). */
export const systemLookup: HostLookup = async (name) => (await lookup(name, { all: true })).map((a) => a.address);

/** The host of each URL, brackets of an IPv6 literal taken off. */
export const urlHosts = (urls: string[]): string[] => urls.map((u) => hostOfUrl(u).replace(/^\[|\]$/g, ''));

/** Resolves each DNS name (IP literals need no lookup), all at once, each bounded: a slow resolver says so instead of holding the caller. */
export async function resolveNames(hosts: string[], timeoutMs = 2000, look: HostLookup = systemLookup): Promise<Map<string, Resolved>> {
  const names = [...new Set(hosts)].filter((h) => !isIP(h));
  const entries = await Promise.all(
    names.map(async (name): Promise<[string, Resolved]> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<Resolved>((resolve) => {
        timer = setTimeout(() => resolve({ error: `no answer within ${timeoutMs} ms` }), timeoutMs);
      });
      const found = look(name).then(
        (ips): Resolved => ({ ips }),
        (err: NodeJS.ErrnoException): Resolved => ({ error: err.code ?? err.message }),
      );
      try {
        return [name, await Promise.race([found, late])];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return new Map(entries);
}

/** Resolves the DNS names among the members' peer URL hosts (IP literals need no lookup), each bounded. */
export async function resolvePeerHosts(members: PeerMember[], timeoutMs = 2000, look: HostLookup = systemLookup): Promise<Map<string, Resolved>> {
  return resolveNames(members.flatMap((m) => urlHosts(m.peerURLs)), timeoutMs, look);
}
