import type { MemberRow } from './assess.js';

/** The host part of an etcd URL: https://10.0.0.3:2379 → 10.0.0.3. */
export function hostOfUrl(url: string): string {
  return url.replace(/^https?:\/\//, '').replace(/:\d+$/, '');
}

/** Finds a member by name, hex ID (as etcdctl prints it) or host address. */
export function findMember<T extends { name: string; idHex: string | null; peerURLs: string[]; clientURLs: string[] }>(members: T[], ref: string): T | undefined {
  const r = ref.toLowerCase();
  return (
    members.find((m) => m.name === r) ??
    members.find((m) => m.idHex === r) ??
    members.find((m) => [...m.peerURLs, ...m.clientURLs].some((u) => hostOfUrl(u) === r))
  );
}

/**
 * What removing `target` leaves of the voting members: etcd's rule is that the
 * healthy voters left must still be a quorum of the smaller cluster, and a
 * cluster of two or fewer voters is never shrunk. Preflight and the step use it alike.
 */
export function afterRemoval(members: MemberRow[], target: MemberRow): { ok: boolean; voters: number; healthyLeft: number; quorumAfter: number } {
  const voters = members.filter((m) => !m.learner);
  const healthyLeft = voters.filter((m) => m !== target && m.reachable && m.status && m.status.leader !== '0').length;
  const quorumAfter = Math.floor((voters.length - 1) / 2) + 1;
  const ok = target.learner || (voters.length > 2 && healthyLeft >= quorumAfter);
  return { ok, voters: voters.length, healthyLeft, quorumAfter };
}

/**
 * host:port of everything a member's etcd may serve on: its client endpoints in
 * the inventory and its client and peer URLs in the member list, whatever the
 * ports. Where neither names a client (or a peer) address, etcd's default port
 * on the inventory host stands in, so a check never looks at nothing.
 */
export function listenAddrsOf(
  endpoints: string[],
  m: { name: string; host: string },
  rows: { name: string; peerURLs: string[]; clientURLs: string[] }[] = [],
): string[] {
  const row = rows.find((r) => r.name === m.name) ?? rows.find((r) => r.peerURLs.some((u) => hostOfUrl(u) === m.host));
  const portOf = (u: string) => /:(\d+)$/.exec(u.replace(/\/+$/, ''))?.[1];
  const clients = [...endpoints.filter((u) => hostOfUrl(u) === m.host), ...(row?.clientURLs ?? [])].filter(portOf);
  const peers = (row?.peerURLs ?? []).filter(portOf);
  const addrs = new Set<string>();
  for (const u of clients.length ? clients : [`https://${m.host}:2379`]) addrs.add(`${hostOfUrl(u)}:${portOf(u)}`);
  for (const u of peers.length ? peers : [`https://${m.host}:2380`]) addrs.add(`${hostOfUrl(u)}:${portOf(u)}`);
  return [...addrs];
}

/**
 * Whether the member's peer URL points at its inventory host: if not, the
 * etcd member and the host the bot would stop and wipe are not the same
 * machine. Null when they agree, else what disagrees.
 */
export function peerHostMismatch(m: { name: string; peerURLs: string[] }, inventoryHost: string): string | null {
  const hosts = [...new Set(m.peerURLs.map(hostOfUrl))];
  if (hosts.length === 0 || hosts.every((h) => h === inventoryHost)) return null;
  return `${m.name}'s peer URL${m.peerURLs.length > 1 ? 's' : ''} ${m.peerURLs.join(', ')} point${m.peerURLs.length > 1 ? '' : 's'} at ${hosts.filter((h) => h !== inventoryHost).join(', ')}, but the inventory puts ${m.name} on ${inventoryHost}`;
}
