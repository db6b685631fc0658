import type { EndpointProbe } from '../kube/lb-probe.js';

/** A master as the inventory names it, with the address the bot reaches it at. */
export interface LbMaster {
  name: string;
  host: string;
}

/** What the worker saw of the API load balancer after a master was replaced. */
export interface LbLook {
  /** host:port of the load balancer. */
  lb: string;
  /** Where the masters' API servers listen (6443). */
  apiPort: number;
  masters: LbMaster[];
  /** The master the run replaced (its address is the one the load balancer must now reach). */
  changed: string;
  /** Fresh TLS connections through the load balancer, each as its backend's certificate named it. */
  through: EndpointProbe[];
  /** The backends of its pool as the inventory lists them (clusters[].apiLoadBalancer.backends), each probed directly; absent: not listed. */
  pool?: { backend: string; probe: EndpointProbe }[];
}

export interface LbCheck {
  ok: string[];
  /** One sentence per thing to change, naming it. */
  problems: string[];
}

const norm = (s: string) => s.toLowerCase().replace(/^\[|\]$/g, '');
const splitHostPort = (hp: string) => {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(hp);
  return m ? { host: norm(m[1]!), port: Number(m[2]) } : { host: norm(hp), port: NaN };
};
/** The master whose address (or name) a serving certificate carries. */
const masterOf = (names: string[], masters: LbMaster[]) => {
  const set = new Set(names.map(norm));
  return masters.find((m) => set.has(norm(m.host))) ?? masters.find((m) => set.has(norm(m.name)));
};
const times = (counts: Map<string, number>) => [...counts].map(([n, c]) => `${n} ×${c}`).join(', ');

/**
 * Pure: after a replace, the API load balancer against the masters' addresses.
 * Through it, each connection's serving certificate says which master answered
 * (a TCP load balancer hands over the backend's own certificate): the replaced
 * master must be among them, and no connection may land on a server that is
 * none of the masters (the machine the replaced master was on before). The
 * pool as the inventory lists it must hold each master's address and nothing
 * else. What cannot be seen is said as such: a load balancer's health check
 * hides a dead backend from any probe through it, and one that prefers a
 * backend while it is healthy never shows the others; so "not reached" says
 * what to check (and is no problem at all when every connection went to one
 * master: such a pool shows nothing else), and only the listed pool is judged
 * entry by entry.
 */
export function judgeLoadBalancer(l: LbLook): LbCheck {
  const out: LbCheck = { ok: [], problems: [] };
  const changed = l.masters.find((m) => m.name === l.changed);
  const want = changed ? `${changed.host.includes(':') ? `[${changed.host}]` : changed.host}:${l.apiPort}` : null;
  const reached = new Map<string, number>();
  const strangers = new Map<string, number>();
  const errors = new Map<string, number>();
  for (const p of l.through) {
    if (!p.ok) errors.set(p.error, (errors.get(p.error) ?? 0) + 1);
    else {
      const m = masterOf(p.names, l.masters);
      const key = m ? m.name : p.names.filter((n) => !/^kubernetes(\.|$)/.test(n)).join('/') || '(no names)';
      (m ? reached : strangers).set(key, ((m ? reached : strangers).get(key) ?? 0) + 1);
    }
  }
  const n = l.through.length;
  const seen = `${n} connection${n === 1 ? '' : 's'} through the load balancer ${l.lb}`;
  if (reached.size === 0 && strangers.size === 0) {
    out.problems.push(`the load balancer ${l.lb} does not answer (${times(errors) || 'no connection tried'}): the API is not reachable through it, whatever its pool. Check it is up and that its pool holds the masters' addresses (${l.masters.map((m) => `${m.host}:${l.apiPort}`).join(', ')}).`);
  } else {
    out.ok.push(`${seen} reached ${times(reached) || 'no master'}${strangers.size ? `, and ${times(strangers)}` : ''}${errors.size ? `; ${times(errors)}` : ''}`);
    if (strangers.size) {
      out.problems.push(
        `${[...strangers.values()].reduce((a, b) => a + b, 0)} of the ${seen} reached an API server that is none of the masters (its certificate names ${[...strangers.keys()].join('; ')}): the pool still sends to a machine that is not a master now (the one ${l.changed} was on before?). Take it out of the load balancer's pool.`,
      );
    }
    const onlyOne = reached.size === 1 && strangers.size === 0 && errors.size === 0;
    if (changed && !reached.has(changed.name) && onlyOne && !l.pool) {
      // An active/backup pool (haproxy `backup`, a cloud LB's priority) sends everything to one healthy backend: the others cannot be seen.
      out.ok.push(
        `every connection went to ${[...reached.keys()][0]}: the load balancer sends to one backend while it is healthy, so whether its pool holds ${l.changed}'s ${want} cannot be seen through it. List its pool in clusters[].apiLoadBalancer.backends to have it checked`,
      );
    } else if (changed && !reached.has(changed.name)) {
      out.problems.push(
        `${l.changed} (now at ${changed.host}) was not reached in ${seen} (${times(reached) || 'no master'}): the pool may lack ${want}, still naming the address ${l.changed} had before. Add ${want} to the load balancer's pool and take out the old address${l.pool ? '' : ' (a load balancer that sends to one backend while it is healthy hides the others: look at its pool to be sure)'}.`,
      );
    }
  }
  if (l.pool) {
    const hosts = new Map(l.masters.map((m) => [norm(m.host), m]));
    const listed = l.pool.map((b) => ({ ...b, hp: splitHostPort(b.backend) }));
    for (const m of l.masters) {
      const entry = listed.find((b) => b.hp.host === norm(m.host));
      if (!entry) out.problems.push(`the load balancer's pool, as the inventory lists it (clusters[].apiLoadBalancer.backends), lacks ${m.name}'s ${m.host}:${l.apiPort}: add it (and to the list).`);
      else if (entry.hp.port !== l.apiPort) out.problems.push(`the pool lists ${m.name} as ${entry.backend}, but its API server listens on ${l.apiPort}: change the port to ${l.apiPort}.`);
    }
    for (const b of listed) {
      if (hosts.has(b.hp.host)) continue;
      const there = b.probe.ok ? `an API server whose certificate names ${b.probe.names.join(', ')} answers there` : `nothing answers there (${b.probe.error})`;
      out.problems.push(
        `the load balancer's pool, as the inventory lists it, holds ${b.backend}, which is no master's address (${there}): the address of a master replaced or rebuilt elsewhere? Take it out of the pool (and the list); a health check that marks it down hides it from every probe through the load balancer.`,
      );
    }
    if (out.problems.length === 0) out.ok.push(`its pool as the inventory lists it holds each master's address and nothing else: ${l.pool.map((b) => b.backend).join(', ')}`);
  }
  return out;
}

/** The run's closing caveat for what judgeLoadBalancer found wrong, or undefined. etcd is healthy: it ends the run with a warning, never a failure. */
export function loadBalancerCaveat(check: LbCheck): string | undefined {
  return check.problems.length ? `etcd healthy, API load balancer not yet: ${check.problems.join(' ')}` : undefined;
}
