import { describe, expect, it } from 'vitest';
import { renderRun } from '../../src/render/run-message.js';
import { newRun } from '../../src/runbook/new-run.js';
import { transition } from '../../src/runbook/transition.js';
import type { Run, StepSpec } from '../../src/runbook/types.js';
import { checkPeerNames, peerNamesCaveat, type PeerMember, type Resolved } from '../../src/status/peer-drift.js';
import { kubeCheckStep } from '../../src/steps/kube-check.js';
import { verifyStep } from '../../src/steps/verify.js';
import type { HostLookup } from '../../src/worker/dns-lookup.js';
import { lookAtPeerNames } from '../../src/worker/peer-names.js';
import { threeMasters } from '../support/fixtures.js';

const now = new Date('2026-11-24T10:05:00Z');
const inventory = [1, 2, 3].map((i) => ({ name: `m${i}`, host: `10.0.0.${i}` }));
const member = (i: number, peer = `https://etcd-${i}.prod.example.com:2380`): PeerMember => ({ name: `m${i}`, idHex: `a${i}`, peerURLs: [peer] });
const named = [1, 2, 3].map((i) => member(i));
const resolvedTo = (ips: Record<string, string[] | string>): Map<string, Resolved> => new Map(Object.entries(ips).map(([n, v]) => [n, typeof v === 'string' ? { error: v } : { ips: v }]));

describe('checkPeerNames: the DNS names of peer URLs against the inventory', () => {
  it('judges nothing on IP literals: no names, no problems, no caveat', () => {
    const c = checkPeerNames([1, 2, 3].map((i) => member(i, `https://10.0.0.${i}:2380`)), inventory, new Map());
    expect(c).toEqual({ ok: [], problems: [], names: 0 });
    expect(peerNamesCaveat(c)).toBeUndefined();
  });

  it('passes every name that resolves to its member\'s inventory address (one of several is enough)', () => {
    const c = checkPeerNames(named, inventory, resolvedTo({ 'etcd-1.prod.example.com': ['10.0.0.1'], 'etcd-2.prod.example.com': ['10.9.9.9', '10.0.0.2'], 'etcd-3.prod.example.com': ['10.0.0.3'] }));
    expect(c.names).toBe(3);
    expect(c.problems).toEqual([]);
    expect(c.ok[1]).toBe("etcd-2.prod.example.com (m2) resolves to 10.9.9.9, 10.0.0.2, the inventory's address");
    expect(peerNamesCaveat(c)).toBeUndefined();
  });

  it('names the record that still points at the old machine, and its fix, in a caveat that does not fail the run', () => {
    // m3 was rebuilt on 10.0.0.3; its record still says 10.0.0.33, the old machine.
    const c = checkPeerNames(named, inventory, resolvedTo({ 'etcd-1.prod.example.com': ['10.0.0.1'], 'etcd-2.prod.example.com': ['10.0.0.2'], 'etcd-3.prod.example.com': ['10.0.0.33'] }));
    expect(c.ok).toHaveLength(2);
    expect(c.problems).toEqual([
      "etcd-3.prod.example.com (peer URL of m3) resolves to 10.0.0.33, not to 10.0.0.3, m3's address in the inventory: the record still names the old machine. Fix: point etcd-3.prod.example.com at 10.0.0.3 (and the load balancer's entry for m3), as the OpenShift recovery does by hand; or, if the inventory is what is wrong, correct its host for m3.",
    ]);
    expect(peerNamesCaveat(c)).toBe(`etcd healthy, DNS not yet: ${c.problems[0]}`);
  });

  it('says a name that does not resolve from the worker, with the record to create', () => {
    const c = checkPeerNames([member(1)], inventory, resolvedTo({ 'etcd-1.prod.example.com': 'ENOTFOUND' }));
    expect(c.problems).toEqual([
      'etcd-1.prod.example.com (peer URL of m1) does not resolve from the worker (ENOTFOUND), where the inventory puts m1 at 10.0.0.1. Fix: create the record etcd-1.prod.example.com → 10.0.0.1 (and the load balancer\'s entry for m1), or check the worker\'s resolver if the masters resolve it.',
    ]);
  });

  it('holds the name against what an inventory host that is a name resolves to, and passes the same name as the inventory\'s', () => {
    const inv = [
      { name: 'm1', host: 'master-1.prod.example.com' },
      { name: 'm2', host: 'master-2.prod.example.com' },
      { name: 'm3', host: 'etcd-3.prod.example.com' },
    ];
    const c = checkPeerNames(named, inv, resolvedTo({ 'etcd-1.prod.example.com': ['10.0.0.1'], 'master-1.prod.example.com': ['10.0.0.1'], 'etcd-2.prod.example.com': ['10.0.0.20'], 'master-2.prod.example.com': ['10.0.0.2'] }));
    expect(c.ok).toEqual(["etcd-1.prod.example.com (m1) resolves to 10.0.0.1, the inventory's address", 'etcd-3.prod.example.com (m3): the inventory reaches m3 by this name']);
    expect(c.problems).toHaveLength(1);
    expect(c.problems[0]).toContain('etcd-2.prod.example.com (peer URL of m2) resolves to 10.0.0.20, not to 10.0.0.2');
  });

  it('cannot judge a member the inventory does not name, or whose inventory name does not resolve, and says so', () => {
    const c = checkPeerNames([member(4), member(1)], [{ name: 'm1', host: 'master-1.prod.example.com' }], resolvedTo({ 'etcd-1.prod.example.com': ['10.0.0.1'], 'master-1.prod.example.com': 'ETIMEOUT' }));
    expect(c.problems).toEqual([
      'etcd-4.prod.example.com (peer URL of m4) not checked: the inventory names no member "m4", so there is no address to hold it against.',
      "etcd-1.prod.example.com (peer URL of m1) not checked: m1's inventory host master-1.prod.example.com does not resolve from the worker (ETIMEOUT).",
    ]);
  });
});

describe('lookAtPeerNames: the lookups through an injected resolver, then the judging', () => {
  /** A resolver that knows `zone`, says ENOTFOUND for other names, never answers for `hang`, and counts what it was asked. */
  function resolver(zone: Record<string, string[]>, hang: string[] = []): HostLookup & { asked: string[] } {
    const asked: string[] = [];
    const look = async (name: string) => {
      asked.push(name);
      if (hang.includes(name)) return new Promise<string[]>(() => undefined);
      if (zone[name]) return zone[name]!;
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    };
    return Object.assign(look, { asked });
  }

  it('asks nothing when every peer URL is an IP literal', async () => {
    const look = resolver({});
    const out = await lookAtPeerNames([1, 2, 3].map((i) => member(i, `https://10.0.0.${i}:2380`)), inventory, look);
    expect(look.asked).toEqual([]);
    expect(out).toEqual({ check: { ok: [], problems: [], names: 0 }, caveat: undefined });
  });

  it('resolves each name once and ends with no caveat when the records follow the inventory', async () => {
    const look = resolver({ 'etcd-1.prod.example.com': ['10.0.0.1'], 'etcd-2.prod.example.com': ['10.0.0.2'], 'etcd-3.prod.example.com': ['10.0.0.3'] });
    const out = await lookAtPeerNames([...named, member(3)], inventory, look);
    expect(look.asked.sort()).toEqual(['etcd-1.prod.example.com', 'etcd-2.prod.example.com', 'etcd-3.prod.example.com']);
    expect(out.caveat).toBeUndefined();
    expect(out.check.ok).toHaveLength(4);
  });

  it('gives a caveat for a stale record, an unknown name and a resolver that does not answer, within its bound', async () => {
    const look = resolver({ 'etcd-1.prod.example.com': ['10.0.0.1'], 'etcd-2.prod.example.com': ['10.0.0.22'] }, ['etcd-3.prod.example.com']);
    const t0 = Date.now();
    const out = await lookAtPeerNames([...named, member(1, 'https://etcd-x.prod.example.com:2380')], inventory, look, 300);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(out.check.problems.map((p) => p.split(':')[0])).toEqual([
      'etcd-2.prod.example.com (peer URL of m2) resolves to 10.0.0.22, not to 10.0.0.2, m2\'s address in the inventory',
      'etcd-3.prod.example.com (peer URL of m3) does not resolve from the worker (no answer within 300 ms), where the inventory puts m3 at 10.0.0.3. Fix',
      'etcd-x.prod.example.com (peer URL of m1) does not resolve from the worker (ENOTFOUND), where the inventory puts m1 at 10.0.0.1. Fix',
    ]);
    expect(out.caveat).toMatch(/^etcd healthy, DNS not yet: etcd-2\.prod\.example\.com .* Fix: point etcd-2\.prod\.example\.com at 10\.0\.0\.2 /);
  });

  it('looks up an inventory host that is a name only for a member whose peer URL is a name', async () => {
    const look = resolver({ 'etcd-1.prod.example.com': ['10.0.0.1'], 'master-1.prod.example.com': ['10.0.0.1'] });
    const inv = [1, 2].map((i) => ({ name: `m${i}`, host: `master-${i}.prod.example.com` }));
    const out = await lookAtPeerNames([member(1), member(2, 'https://10.0.0.2:2380')], inv, look);
    expect(look.asked.sort()).toEqual(['etcd-1.prod.example.com', 'master-1.prod.example.com']);
    expect(out.caveat).toBeUndefined();
  });
});

describe('the verify step of a replace, and a caveat before the last step', () => {
  it('checks the DNS names after a replace only, and says so in its plan text', () => {
    const replace = verifyStep.spec({ runbook: 'replace', voters: 3, minRevision: 9 });
    expect(replace.params).toEqual({ voters: 3, minRevision: 9, dnsNames: true });
    expect(replace.operation).toContain("each DNS name in a peer URL resolves to its member's address in the inventory");
    for (const runbook of ['restore', 'restore-quorum'] as const) expect(verifyStep.spec({ runbook, voters: 3, minRevision: 9 }).params.dnsNames).toBeUndefined();
    // A run stored before the parameter existed still parses.
    expect(verifyStep.params.parse({ voters: 3, minRevision: 9 })).toEqual({ voters: 3, minRevision: 9 });
  });

  function finish(caveats: (string | undefined)[]): Run {
    const { inventory: inv, cluster } = threeMasters('{}');
    const steps: StepSpec[] = [verifyStep.spec({ runbook: 'replace', voters: 3, minRevision: 0 }), kubeCheckStep.spec({ cluster })];
    const state = { members: [], leaderHex: null, raftIndex: 0, revision: 0, at: now.toISOString() };
    let run: Run = newRun(inv, { runId: 'r-0000dddd', runbook: 'replace', title: 'Replace m3 in prod', cluster: 'prod', target: 'm3', steps, plannedState: state, requestedBy: 'UALICE', channelId: 'C1' }, now);
    caveats.forEach((c, i) => {
      for (const e of [{ kind: 'start-step', step: i, token: 'A' } as const, { kind: 'complete-step', step: i, token: 'A', summary: c ?? 'ok', caveat: c } as const]) {
        const out = transition(run, e, now);
        if ('refused' in out) throw new Error(out.refused);
        run = out.run;
      }
    });
    return run;
  }

  it("keeps the verify step's caveat to the end of the run though the last step has none", () => {
    const dns = 'etcd healthy, DNS not yet: etcd-3.prod.example.com (peer URL of m3) resolves to 10.0.0.33, not to 10.0.0.3 …';
    const run = finish([dns, undefined]);
    expect(run).toMatchObject({ status: 'done', ended: { reason: `every step done; ${dns}`, caveat: dns } });
    expect(run.records[0]!.caveat).toBe(dns);
    expect(String(renderRun(run).text)).toBe('Replace m3 in prod: DONE: etcd healthy, DNS not yet (run r-0000dddd)');
  });

  it('ends with both caveats in step order, and with none when no step had one', () => {
    const dns = 'etcd healthy, DNS not yet: etcd-3 …';
    const kube = 'etcd healthy, Kubernetes not yet: node m3 NotReady';
    expect(finish([dns, kube]).ended).toMatchObject({ caveat: `${dns} · ${kube}` });
    expect(finish([undefined, undefined]).ended).toEqual({ at: now.toISOString(), reason: 'every step done' });
  });
});
