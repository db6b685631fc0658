import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { PeerMember, Resolved } from '../status/peer-drift.js';
import { hostOfUrl } from '../status/members.js';

/** Resolves the DNS names among the members' peer URL hosts (IP literals need no lookup), each bounded. */
export async function resolvePeerHosts(members: PeerMember[], timeoutMs = 2000): Promise<Map<string, Resolved>> {
  const names = [...new Set(members.flatMap((m) => m.peerURLs.map((u) => hostOfUrl(u).replace(/^\[|\]$/g, ''))))].filter((h) => !isIP(h));
  const entries = await Promise.all(
    names.map(async (name): Promise<[string, Resolved]> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<Resolved>((resolve) => {
        timer = setTimeout(() => resolve({ error: `no answer within ${timeoutMs} ms` }), timeoutMs);
      });
      const found = lookup(name, { all: true }).then(
        (addrs): Resolved => ({ ips: addrs.map((a) => a.address) }),
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
