import { describe, expect, it } from 'vitest';
import type { EndpointProbe } from '../../src/kube/lb-probe.js';
import { judgeLoadBalancer, loadBalancerCaveat } from '../../src/status/lb-drift.js';
import { lookAtLoadBalancer } from '../../src/worker/lb-check.js';

const masters = [
  { name: 'm1', host: '10.0.0.1' },
  { name: 'm2', host: '10.0.0.2' },
  { name: 'm3', host: '10.0.0.3' },
];
/** What a connection that landed on a master sees: its API server's certificate (the LB's address and the service names in it too). */
const at = (ip: string, name?: string): EndpointProbe => ({ ok: true, names: ['kubernetes', 'kubernetes.default', ...(name ? [name] : []), ip, '10.0.0.100', '10.96.0.1'] });
const refused: EndpointProbe = { ok: false, error: 'ECONNREFUSED' };
const base = { lb: '10.0.0.100:6443', apiPort: 6443, masters, changed: 'm3' };

describe('the API load balancer after a replace', () => {
  it('round-robin over the three masters, the pool listed as it should be: nothing to change', () => {
    const through = [1, 2, 3, 1, 2, 3].map((i) => at(`10.0.0.${i}`));
    const pool = masters.map((m) => ({ backend: `${m.host}:6443`, probe: at(m.host) }));
    const c = judgeLoadBalancer({ ...base, through, pool });
    expect(c.problems).toEqual([]);
    expect(c.ok).toEqual([
      '6 connections through the load balancer 10.0.0.100:6443 reached m1 ×2, m2 ×2, m3 ×2',
      "its pool as the inventory lists it holds each master's address and nothing else: 10.0.0.1:6443, 10.0.0.2:6443, 10.0.0.3:6443",
    ]);
    expect(loadBalancerCaveat(c)).toBeUndefined();
  });

  it('the pool still names the old address of the replaced master and lacks its new one: both named, with what to change', () => {
    const through = [1, 2, 1, 2].map((i) => at(`10.0.0.${i}`));
    const pool = [
      { backend: '10.0.0.1:6443', probe: at('10.0.0.1') },
      { backend: '10.0.0.2:6443', probe: at('10.0.0.2') },
      { backend: '10.0.0.9:6443', probe: refused },
    ];
    const c = judgeLoadBalancer({ ...base, through, pool });
    expect(c.problems).toEqual([
      'm3 (now at 10.0.0.3) was not reached in 4 connections through the load balancer 10.0.0.100:6443 (m1 ×2, m2 ×2): the pool may lack 10.0.0.3:6443, still naming the address m3 had before. Add 10.0.0.3:6443 to the load balancer\'s pool and take out the old address.',
      "the load balancer's pool, as the inventory lists it (clusters[].apiLoadBalancer.backends), lacks m3's 10.0.0.3:6443: add it (and to the list).",
      "the load balancer's pool, as the inventory lists it, holds 10.0.0.9:6443, which is no master's address (nothing answers there (ECONNREFUSED)): the address of a master replaced or rebuilt elsewhere? Take it out of the pool (and the list); a health check that marks it down hides it from every probe through the load balancer.",
    ]);
    expect(loadBalancerCaveat(c)).toMatch(/^etcd healthy, API load balancer not yet: m3 \(now at 10\.0\.0\.3\)/);
  });

  it('connections that land on a server that is no master (the old machine still serving): named, take it out', () => {
    const through = [at('10.0.0.1'), at('10.0.0.9', 'old-master-3'), at('10.0.0.3'), at('10.0.0.9', 'old-master-3')];
    const c = judgeLoadBalancer({ ...base, through });
    expect(c.problems).toEqual([
      '2 of the 4 connections through the load balancer 10.0.0.100:6443 reached an API server that is none of the masters (its certificate names old-master-3/10.0.0.9/10.0.0.100/10.96.0.1): the pool still sends to a machine that is not a master now (the one m3 was on before?). Take it out of the load balancer\'s pool.',
    ]);
  });

  it('every connection to one master (an active/backup pool): the others cannot be seen, said as such, no caveat', () => {
    const c = judgeLoadBalancer({ ...base, through: [1, 1, 1].map(() => at('10.0.0.1')) });
    expect(c.problems).toEqual([]);
    expect(c.ok[1]).toBe(
      "every connection went to m1: the load balancer sends to one backend while it is healthy, so whether its pool holds m3's 10.0.0.3:6443 cannot be seen through it. List its pool in clusters[].apiLoadBalancer.backends to have it checked",
    );
  });

  it('a load balancer that answers nothing, and a pool entry on the wrong port', () => {
    const down = judgeLoadBalancer({ ...base, through: [refused, refused] });
    expect(down.problems).toEqual([
      "the load balancer 10.0.0.100:6443 does not answer (ECONNREFUSED ×2): the API is not reachable through it, whatever its pool. Check it is up and that its pool holds the masters' addresses (10.0.0.1:6443, 10.0.0.2:6443, 10.0.0.3:6443).",
    ]);
    const pool = [...masters.slice(0, 2).map((m) => ({ backend: `${m.host}:6443`, probe: at(m.host) })), { backend: '10.0.0.3:443', probe: refused }];
    const port = judgeLoadBalancer({ ...base, through: [1, 2, 3].map((i) => at(`10.0.0.${i}`)), pool });
    expect(port.problems).toEqual(['the pool lists m3 as 10.0.0.3:443, but its API server listens on 6443: change the port to 6443.']);
  });
});

describe('looking at the load balancer from the worker', () => {
  const cluster = (extra: Record<string, unknown> = {}) => ({ name: 'prod', members: masters.map((m) => ({ ...m })), ...extra }) as never;
  const k = (server: string) => ({ server }) as never;

  it("a kubeconfig that names one master's own API server: nothing to check, said so", async () => {
    const r = await lookAtLoadBalancer(k('https://10.0.0.1:6443'), cluster(), 'm3', { probe: async () => refused });
    expect(r.caveat).toBeUndefined();
    expect(r.summary).toMatch(/^API load balancer not checked: https:\/\/10\.0\.0\.1:6443 is m1's own API server, not a load balancer/);
  });

  it('a replaced master its health checks have not let in yet is looked for again, and found: no caveat', async () => {
    let looks = 0;
    let n = 0;
    // The first look: m1 and m2 only (m3 not marked up yet); then round-robin over the three.
    const probe = async (hp: { host: string }) => {
      if (hp.host !== '10.0.0.100') return at(hp.host);
      if (n++ % 12 === 0) looks++;
      return looks === 1 ? at(`10.0.0.${(n % 2) + 1}`) : at(`10.0.0.${(n % 3) + 1}`);
    };
    const r = await lookAtLoadBalancer(k('https://10.0.0.100:6443'), cluster(), 'm3', { probe, settleMs: 5000, everyMs: 1 });
    expect(looks).toBe(2);
    expect(r.caveat).toBeUndefined();
    expect(r.summary).toBe('API load balancer 10.0.0.100:6443 reaches m3');
  });

  it('one that never comes in ends with the caveat at the bound', async () => {
    const probe = async (hp: { host: string }) => (hp.host === '10.0.0.100' ? at('10.0.0.1') : at(hp.host));
    const rr = async (hp: { host: string }) => (hp.host === '10.0.0.100' ? at(`10.0.0.${1 + Math.round(Math.random())}`) : at(hp.host));
    // Every connection to m1: an active/backup pool, said as such.
    expect((await lookAtLoadBalancer(k('https://10.0.0.100:6443'), cluster(), 'm3', { probe, settleMs: 20, everyMs: 1 })).caveat).toBeUndefined();
    const r = await lookAtLoadBalancer(k('https://10.0.0.100:6443'), cluster({ apiLoadBalancer: { backends: ['10.0.0.1:6443', '10.0.0.2:6443'] } }), 'm3', { probe: rr, settleMs: 20, everyMs: 1 });
    expect(r.caveat).toContain("lacks m3's 10.0.0.3:6443: add it");
  });
});
