import { isIP } from 'node:net';
import { checkPeerNames, peerNamesCaveat, type PeerMember, type PeerNameCheck } from '../status/peer-drift.js';
import { resolveNames, systemLookup, urlHosts, type HostLookup } from './dns-lookup.js';

/**
 * Looks up the DNS names in the members' peer URLs (and the inventory hosts
 * that are names themselves, for the members that have such URLs) and judges
 * them against the inventory: what the verify step of a replace reports once
 * etcd is whole. No name, no lookup: a cluster on IP literals costs nothing.
 */
export async function lookAtPeerNames(
  members: PeerMember[],
  inventory: { name: string; host: string }[],
  look: HostLookup = systemLookup,
  timeoutMs = 2000,
): Promise<{ check: PeerNameCheck; caveat?: string }> {
  const named = members.filter((m) => urlHosts(m.peerURLs).some((h) => !isIP(h)));
  const hosts = [...named.flatMap((m) => urlHosts(m.peerURLs)), ...named.flatMap((m) => inventory.filter((c) => c.name === m.name).map((c) => c.host))];
  const resolved = hosts.some((h) => !isIP(h)) ? await resolveNames(hosts, timeoutMs, look) : new Map();
  const check = checkPeerNames(members, inventory, resolved);
  return { check, caveat: peerNamesCaveat(check) };
}
