import { isIP } from 'node:net';
import type { MasterView, NodeAddress } from '../kube/control-plane.js';
import type { NodeSummary } from '../kube/nodes.js';
import { hostOfUrl } from './members.js';

/** An etcd member as the member list gives it. */
export interface PeerMember {
  /** Empty for a member added but never started. */
  name: string;
  idHex: string | null;
  peerURLs: string[];
}

/** What a DNS name in a peer URL resolved to from the worker, or why it did not. */
export type Resolved = { ips: string[] } | { error: string };

export interface PeerCheck {
  /** One line per member whose peer URL is an address of its node. */
  ok: string[];
  /** One line per mismatch (or member with no node), with what to fix. */
  problems: string[];
}

const IP_TYPES = ['InternalIP', 'ExternalIP'];

/** The address a member's peer URL should use: the node's InternalIP, else another IP, else any address. */
function primary(addrs: NodeAddress[]): NodeAddress | undefined {
  return addrs.find((a) => a.type === 'InternalIP') ?? addrs.find((a) => IP_TYPES.includes(a.type)) ?? addrs[0];
}

const describeNode = (node: NodeSummary, addrs: NodeAddress[]) => {
  const p = primary(addrs);
  return `node ${node.name} (${p ? `${p.type} ${p.address}` : 'no addresses'})`;
};

/** The same URL with its host replaced: what `etcdctl member update` should be given. */
function withHost(url: string, host: string): string {
  return url.replace(/^(https?:\/\/)(\[[^\]]+\]|[^:/]+)/, `$1${host.includes(':') ? `[${host}]` : host}`);
}

/**
 * Each etcd member's peer URL against the addresses of its Kubernetes node:
 * the drift the OpenShift recovery fixes by hand (a master rebuilt with a new
 * address while the DNS record, the load balancer or the member list still
 * names the old one). A member is matched to its node through the inventory
 * (same name, whose Node was matched by name or host address), else to a node
 * of the same name, else to a node that has its peer host among its addresses.
 * A peer host that is a DNS name must resolve to one of the node's addresses.
 */
export function checkPeerUrls(members: PeerMember[], masters: MasterView[], otherNodes: NodeSummary[], resolved: Map<string, Resolved>): PeerCheck {
  const out: PeerCheck = { ok: [], problems: [] };
  const known = [
    ...masters.filter((m) => m.node).map((m) => ({ master: m.name, node: m.node!, addrs: m.addresses })),
    // Nodes outside the inventory carry only the addresses their summary keeps.
    ...otherNodes.map((n) => ({
      master: null as string | null,
      node: n,
      addrs: [...n.internalIPs.map((a) => ({ type: 'InternalIP', address: a })), ...n.externalIPs.map((a) => ({ type: 'ExternalIP', address: a })), ...n.hostnames.map((a) => ({ type: 'Hostname', address: a }))],
    })),
  ];
  for (const m of members) {
    const who = m.name ? `member ${m.name}` : `unstarted member ${m.idHex ?? '?'}`;
    const id = m.idHex ?? '<member ID>';
    const hosts = m.peerURLs.map((u) => ({ url: u, host: hostOfUrl(u).replace(/^\[|\]$/g, '') }));
    const byAddress = known.find((k) => hosts.some((h) => k.addrs.some((a) => a.address === h.host)));
    const match = (m.name && (known.find((k) => k.master === m.name) ?? known.find((k) => k.node.name === m.name))) || byAddress;
    if (!match) {
      out.problems.push(
        `${who} (\`${id}\`): no node matches it by name or by its peer URL ${m.peerURLs.join(', ') || '(none)'}: either its node is not registered yet (see the nodes above) or the peer URL points at a machine that is no master. If the member is stale, \`/etcd replace\` it; if the URL drifted, \`etcdctl member update ${id} --peer-urls=<the master's address>\`.`,
      );
      continue;
    }
    const nodeText = describeNode(match.node, match.addrs);
    const want = primary(match.addrs)?.address;
    const ips = new Set(match.addrs.map((a) => a.address));
    const bad: string[] = [];
    for (const h of hosts) {
      if (isIP(h.host)) {
        if (ips.has(h.host)) continue;
        bad.push(
          `${who} (\`${id}\`): peer URL ${h.url} is not an address of ${nodeText}: the member still advertises an address its node no longer has (a rebuilt master, or a load-balancer or DNS entry written into the member list). Fix: \`etcdctl member update ${id} --peer-urls=${want ? withHost(h.url, want) : '<the node\'s address>'}\` and the member's --initial-advertise-peer-urls, or the node's address if the node is the one that is wrong.`,
        );
        continue;
      }
      const r = resolved.get(h.host);
      if (r && 'ips' in r) {
        if (r.ips.some((ip) => ips.has(ip))) continue;
        bad.push(
          `${who} (\`${id}\`): peer URL ${h.url} resolves to ${r.ips.join(', ')}, not to an address of ${nodeText}: the DNS record drifted (the master came back with a new address). Fix: point ${h.host} at ${want ?? "the node's address"} (and the load balancer's entries for the masters), as the OpenShift recovery does by hand; or \`etcdctl member update ${id} --peer-urls=${want ? withHost(h.url, want) : '<the node\'s address>'}\`.`,
        );
      } else if (!ips.has(h.host)) {
        bad.push(
          `${who} (\`${id}\`): peer URL ${h.url}: ${h.host} does not resolve from the worker (${r && 'error' in r ? r.error : 'not looked up'}), so it cannot be matched to ${nodeText}. If it does not resolve on the masters either, create the record pointing at ${want ?? "the node's address"}.`,
        );
      }
    }
    if (bad.length) out.problems.push(...bad);
    else out.ok.push(`${who}: peer URL ${m.peerURLs.join(', ')} is an address of ${nodeText}`);
  }
  return out;
}

/** What the DNS names in the members' peer URLs resolve to, against the inventory's address of each member. */
export interface PeerNameCheck {
  /** One line per DNS name that resolves to its member's inventory address. */
  ok: string[];
  /** One line per name that does not (or could not be checked), naming the record and its fix. */
  problems: string[];
  /** How many DNS names the peer URLs hold (0: IP literals only, nothing to look at). */
  names: number;
}

/**
 * Each DNS name in a member's peer URLs (the `etcd-N` records of an OpenShift
 * master) against the address the inventory gives that member: after a
 * master is replaced or rebuilt with a new address, the record must follow,
 * or the peers and the API server keep dialling the old machine. The
 * inventory's host is that address when it is an IP; when it is a name
 * itself, what that name resolves to (where the bot reaches the machine over
 * SSH). `resolved` holds what the worker's resolver said for both. Members the
 * inventory does not name, and IP literals, are not judged here (the replace
 * plan and `/etcd nodes` look at those).
 */
export function checkPeerNames(members: PeerMember[], inventory: { name: string; host: string }[], resolved: Map<string, Resolved>): PeerNameCheck {
  const out: PeerNameCheck = { ok: [], problems: [], names: 0 };
  for (const m of members) {
    const conf = m.name ? inventory.find((c) => c.name === m.name) : undefined;
    for (const url of m.peerURLs) {
      const host = hostOfUrl(url).replace(/^\[|\]$/g, '');
      if (isIP(host)) continue;
      out.names++;
      const who = m.name || `unstarted member ${m.idHex ?? '?'}`;
      if (!conf) {
        out.problems.push(`${host} (peer URL of ${who}) not checked: the inventory names no member ${m.name ? `"${m.name}"` : 'for an unstarted one'}, so there is no address to hold it against.`);
        continue;
      }
      // The inventory reaches the member by this very name: the record is where SSH goes, nothing else to hold it against.
      if (host.toLowerCase() === conf.host.toLowerCase()) {
        out.ok.push(`${host} (${m.name}): the inventory reaches ${m.name} by this name`);
        continue;
      }
      const inv = isIP(conf.host) ? { ips: [conf.host] } : resolved.get(conf.host);
      if (!inv || 'error' in inv) {
        out.problems.push(`${host} (peer URL of ${m.name}) not checked: ${m.name}'s inventory host ${conf.host} does not resolve from the worker (${inv ? inv.error : 'not looked up'}).`);
        continue;
      }
      const want = inv.ips.join(' or ');
      const r = resolved.get(host);
      if (!r || 'error' in r) {
        out.problems.push(
          `${host} (peer URL of ${m.name}) does not resolve from the worker (${r ? r.error : 'not looked up'}), where the inventory puts ${m.name} at ${want}. Fix: create the record ${host} → ${inv.ips[0]} (and the load balancer's entry for ${m.name}), or check the worker's resolver if the masters resolve it.`,
        );
      } else if (r.ips.some((ip) => inv.ips.includes(ip))) {
        out.ok.push(`${host} (${m.name}) resolves to ${r.ips.join(', ')}, the inventory's address`);
      } else {
        out.problems.push(
          `${host} (peer URL of ${m.name}) resolves to ${r.ips.join(', ')}, not to ${want}, ${m.name}'s address in the inventory: the record still names the old machine. Fix: point ${host} at ${inv.ips[0]} (and the load balancer's entry for ${m.name}), as the OpenShift recovery does by hand; or, if the inventory is what is wrong, correct its host for ${m.name}.`,
        );
      }
    }
  }
  return out;
}

/** The run's closing caveat for what checkPeerNames found wrong, or undefined when nothing is. etcd itself is healthy: it ends the run with a warning, never a failure. */
export function peerNamesCaveat(check: PeerNameCheck): string | undefined {
  if (check.problems.length === 0) return undefined;
  return `etcd healthy, DNS not yet: ${check.problems.join(' ')}`;
}
