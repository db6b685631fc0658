import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubelets } from '../../commands/kubelets.js';
import { COMMANDS } from '../../commands/index.js';
import { parseInventory } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';
import { KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, policyContext } from '../../src/kube/csr-policy.js';
import type { Csr } from '../../src/kube/csrs.js';
import { lookAtRenewal } from '../../src/kube/kubelet-renew.js';
import type { KubeNode } from '../../src/kube/nodes.js';
import { platformOf } from '../../src/platform/index.js';
import { planKubeletsRenew } from '../../src/runbook/kubelets-plan.js';
import type { ObservedState } from '../../src/runbook/types.js';
import { kubeletRebootstrapStep } from '../../src/steps/kubelet-rebootstrap.js';
import { checkedReadScript } from '../../src/worker/steps/host-steps.js';
import { begunOf } from '../../src/worker/steps/kubelet-preflight.js';
import { approveKubeletCsrs, kubeletAsideScript, kubeletDown, kubeletPutBackScript, kubeletStartScript, NO_BOOTSTRAP_EXIT, renewalSince, type RenewalApi } from '../../src/worker/steps/kubelet-steps.js';
import { underMemberLock, memberLockPath } from '../../src/worker/steps/member-lock.js';
import { asRequest, opensslCsr } from '../support/csr-pem.js';

const fp = 'SHA256:' + 'A'.repeat(43);
const ssh = `ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${fp} }`;
const inventory = (extra = '', platform = '') =>
  parseInventory(
    `workspace: { roles: { destroy: [UALICE], approve: [UBOB] } }
clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379"] }
    kubeconfig: /etc/etcd-medic/prod.kubeconfig
${platform}    members:
${[1, 2, 3].map((i) => `      - { name: m${i}, host: 10.0.0.${i}, ${ssh} }`).join('\n')}
    nodes:
      - { name: w1, host: 10.0.1.1, ${ssh} }
      - { name: w2, host: 10.0.1.2, ${ssh}, kubeletCert: /srv/kubelet/client.pem }
${extra}`,
    'inventory.yaml',
  );
const inv = inventory();
const prod = inv.clusters[0]!;
const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 1, revision: 1, at: '2026-11-27T00:00:00Z' };
const req = { runId: 'r-0000abcd', requestedBy: 'UALICE', channelId: 'C1' };
const now = new Date('2026-11-27T10:00:00Z');

describe('the inventory of nodes', () => {
  it('reads the nodes beyond the masters, each kubelet path the platform default unless the node names its own', () => {
    expect(prod.nodes.map((n) => n.name)).toEqual(['w1', 'w2']);
    const k = platformOf(prod);
    expect(k.kubelet(prod.nodes[0]!, 'r-1')).toEqual({
      node: 'w1',
      unit: 'kubelet',
      cert: '/var/lib/kubelet/pki/kubelet-client-current.pem',
      kubeconfig: '/etc/kubernetes/kubelet.conf',
      bootstrapConfig: '/etc/kubernetes/bootstrap-kubelet.conf',
      asideDir: '/etc/kubernetes/etcd-medic-aside',
      certAside: '/etc/kubernetes/etcd-medic-aside/kubelet-client-current.pem.r-1',
      kubeconfigAside: '/etc/kubernetes/etcd-medic-aside/kubelet.conf.r-1',
      marker: '/etc/kubernetes/etcd-medic-aside/kubelet-renew.r-1',
    });
    expect(k.kubelet(prod.nodes[1]!, 'r-1').certAside).toBe('/etc/kubernetes/etcd-medic-aside/client.pem.r-1');
  });

  it('takes OpenShift 3 node paths and its node service on a systemd cluster', () => {
    const ocp = inventory('', '    platform: { kind: systemd }\n').clusters[0]!;
    const p = platformOf(ocp).kubelet(ocp.members[0]!, 'r-1');
    expect([p.unit, p.cert, p.kubeconfig, p.bootstrapConfig, p.asideDir]).toEqual([
      'atomic-openshift-node',
      '/etc/origin/node/certificates/kubelet-client-current.pem',
      '/etc/origin/node/node.kubeconfig',
      '/etc/origin/node/bootstrap.kubeconfig',
      '/etc/origin/node/etcd-medic-aside',
    ]);
  });

  it('refuses a node whose name could reach a shell, naming where', () => {
    expect(() => inventory(`      - { name: "n1;rm -rf /", host: 10.0.1.9, ${ssh} }\n`)).toThrow(/clusters\[0\]\.nodes\[2\]\.name: expected a lowercase DNS-style name/);
    expect(() => inventory(`      - { name: w3, host: "10.0.1.9;reboot", ${ssh} }\n`)).toThrow(/clusters\[0\]\.nodes\[2\]\.host: expected a host name or IPv4 address/);
  });

  it('refuses a node listed twice, or a master listed again as a node, naming where', () => {
    expect(() => inventory(`      - { name: w1, host: 10.0.1.9, ${ssh} }\n`)).toThrow(/clusters\[0\]\.nodes\[2\]\.name.*duplicate node name "w1"/);
    expect(() => inventory(`      - { name: m2, host: 10.0.0.2, ${ssh} }\n`)).toThrow(/"m2" is a master \(under members\), and masters are nodes already/);
  });
});

describe('planning /etcd kubelets renew', () => {
  it('one destructive restart per node, masters first, then one destructive step that approves their CSRs', () => {
    const out = planKubeletsRenew(inv, prod, state, { ...req, nodes: [] }, now);
    if (!out.ok) throw new Error(out.reason);
    const { run } = out;
    expect(run.runbook).toBe('kubelets-renew');
    expect(run.title).toBe('Renew the kubelet certificates of m1, m2, m3, w1, w2 in prod');
    expect(run.steps.map((s) => [s.kind, s.destructive, s.host])).toEqual([
      ['kubelet-rebootstrap', true, 'm1'],
      ['kubelet-rebootstrap', true, 'm2'],
      ['kubelet-rebootstrap', true, 'm3'],
      ['kubelet-rebootstrap', true, 'w1'],
      ['kubelet-rebootstrap', true, 'w2'],
      ['kubelet-csrs', true, undefined],
    ]);
    expect(run.steps[3]!.operation).toBe(
      'first, through /etc/etcd-medic/prod.kubeconfig: refuse unless the Kubernetes API is ready (/readyz) and accepts the bootstrap token in /etc/kubernetes/bootstrap-kubelet.conf (and those of the nodes restarted after this one): nothing is stopped otherwise. Then on core@10.0.1.1:22: refuse unless /etc/kubernetes/bootstrap-kubelet.conf is there (what it bootstraps with); systemctl stop kubelet; mv /var/lib/kubelet/pki/kubelet-client-current.pem /etc/kubernetes/etcd-medic-aside/kubelet-client-current.pem.r-0000abcd; mv /etc/kubernetes/kubelet.conf /etc/kubernetes/etcd-medic-aside/kubelet.conf.r-0000abcd; systemctl start kubelet (it files a client CSR with the bootstrap kubeconfig, then its serving CSR), its unit watched for 5 s: a kubelet that does not stay active fails the step at once, naming it, and no other kubelet is restarted; then its bootstrap token is asked of the API server again (one that expired since fails the step, with the way back). Nothing is deleted; a second run of this step does not move the new files',
    );
    expect(run.steps[5]!.params).toEqual({ nodes: ['m1', 'm2', 'm3', 'w1', 'w2'], waitSeconds: 180 });
    expect(run.rationale).toContain('masters m1, m2, m3 and nodes w1, w2');
  });

  it('only the nodes named, in inventory order (masters first)', () => {
    const out = planKubeletsRenew(inv, prod, state, { ...req, nodes: ['w2', 'm3'] }, now);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.map((s) => s.host ?? s.kind)).toEqual(['m3', 'w2', 'kubelet-csrs']);
  });

  it('refuses a node the inventory lacks, and a cluster without a kubeconfig, saying what to do', () => {
    const unknown = planKubeletsRenew(inv, prod, state, { ...req, nodes: ['w9'] }, now);
    expect(unknown).toEqual({ ok: false, reason: expect.stringContaining(`no node "w9" in prod's inventory (its nodes: m1, m2, m3, w1, w2). Type \`/etcd kubelets renew prod <node…>\``) });
    const bare = { ...prod, kubeconfig: undefined };
    expect(planKubeletsRenew(inv, bare, state, { ...req, nodes: [] }, now)).toEqual({ ok: false, reason: expect.stringContaining('has no kubeconfig in the inventory') });
  });
});

describe('/etcd kubelets renew, typed', () => {
  const ctx = { inventory: inv, userId: 'UALICE', channelId: 'C1', commands: COMMANDS };
  const parse = (text: string) => kubelets.run(text.split(' ').filter(Boolean), ctx);

  it('takes an optional cluster, then nodes; none means every node', () => {
    expect(parse('renew')).toMatchObject({ kind: 'job', job: { name: 'plan-kubelets-renew', data: { cluster: 'prod', nodes: [] } } });
    expect(parse('renew prod')).toMatchObject({ job: { data: { cluster: 'prod', nodes: [] } } });
    expect(parse('renew prod m1 w1 w1')).toMatchObject({ job: { data: { cluster: 'prod', nodes: ['m1', 'w1'] } } });
    expect(parse('renew w2')).toMatchObject({ job: { data: { cluster: 'prod', nodes: ['w2'] } } });
    expect(kubelets.role).toBe('destroy');
  });

  it('answers bad input with what was wrong and what to type', () => {
    const err = (text: string) => {
      try {
        parse(text);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error(`"${text}" was accepted`);
    };
    expect(err('')).toContain('`renew`');
    expect(err('rotate')).toContain('"rotate" is not something the bot does with kubelets');
    expect(err('renew w9')).toBe('no node "w9" in prod (its nodes: m1, m2, m3, w1, w2; clusters: prod): name some of those, or none for all');
    expect(err('renew prod m1 w7')).toBe('no node "w7" in prod (its nodes: m1, m2, m3, w1, w2): name some of those, or none for all');
    expect(err('renew staging m1')).toContain('no node "staging" in prod');
    expect(err('renew m1;reboot')).toContain('is not a cluster or node name');
    // As Slack sends it (split on spaces by the slash-command handler): refused at the first hostile word, before any job.
    expect(err("renew prod 'n1;rm -rf /'")).toBe(`"'n1;rm" is not a cluster or node name (lowercase letters, digits, "-" and "." only)`);
    expect(err('renew prod $(reboot)')).toContain('"$(reboot)" is not a cluster or node name');
  });
});

describe('the waves of CSRs a renewal approves', () => {
  let req: Record<string, string>;
  beforeAll(async () => {
    req = {
      w1: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:w1')),
      w1serving: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:w1', 'DNS:w1,IP:10.0.1.1')),
      m1: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:m1')),
      admin: asRequest(await opensslCsr('ec:P-256', '/O=system:masters/CN=system:node:m1')),
    };
  });
  const at = (s: number) => new Date(Date.UTC(2026, 10, 27, 10, 0, s));
  const csr = (name: string, o: { req: string; signer?: string; user?: string; groups?: string[]; s: number; approved?: boolean }): Csr => ({
    metadata: { name, uid: `uid-${name}`, creationTimestamp: at(o.s) },
    spec: { request: req[o.req]!, signerName: o.signer ?? KUBELET_CLIENT_SIGNER, usages: o.signer === KUBELET_SERVING_SIGNER ? ['digital signature', 'server auth'] : ['digital signature', 'client auth'], username: o.user ?? 'system:bootstrap:abcdef', groups: o.groups ?? ['system:bootstrappers', 'system:authenticated'] },
    status: o.approved ? { conditions: [{ type: 'Approved', status: 'True', reason: 'EtcdMedicApprove', message: 'Approved by Slack user UBOB with etcd-medic' }], certificate: 'Y2VydA==' } : {},
  });
  const node = (name: string, ready: boolean, ip: string): KubeNode => ({ metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }], conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown' }] } });
  const look = (csrs: Csr[], nodes: KubeNode[], grace = true) => lookAtRenewal({ csrs, nodes, names: ['m1', 'w1'], since: at(10), policy: policyContext(nodes, prod), servingGraceOver: () => grace });

  it('approves the client CSRs filed since the run began that pass policy; an older one, and one whose subject is wrong, are not', () => {
    const nodes = [node('m1', false, '10.0.0.1'), node('w1', false, '10.0.1.1')];
    const l = look([csr('old', { req: 'w1', s: 1 }), csr('c-w1', { req: 'w1', s: 20 }), csr('c-m1', { req: 'm1', s: 21 }), csr('bad', { req: 'admin', s: 22 })], nodes);
    expect(l.approve.map((a) => [a.csr.metadata!.name, a.node, a.kind])).toEqual([
      ['c-m1', 'm1', 'client'],
      ['c-w1', 'w1', 'client'],
    ]);
    expect(l.flagged.map((f) => [f.csr.metadata!.name, f.verdict.reasons.join('; ')])).toEqual([['bad', 'O is [system:masters], not exactly [system:nodes]']]);
    expect(l.waiting).toEqual({ m1: ['client CSR c-m1 pending', 'client CSR bad pending', 'NotReady'], w1: ['client CSR c-w1 pending', 'NotReady'] });
  });

  it("then the serving CSRs, filed by the nodes; done once every node is Ready with nothing pending and its serving CSR decided", () => {
    const ready = [node('m1', true, '10.0.0.1'), node('w1', true, '10.0.1.1')];
    const clients = [csr('c-w1', { req: 'w1', s: 20, approved: true })];
    // Ready with its client CSR approved, no serving CSR yet: waits for it (within the grace), unless the grace is over.
    expect(look(clients, ready, false).waiting).toEqual({ w1: ['its serving CSR not filed yet'] });
    expect(look(clients, ready, true).waiting).toEqual({});
    const serving = csr('s-w1', { req: 'w1serving', signer: KUBELET_SERVING_SIGNER, user: 'system:node:w1', groups: ['system:nodes', 'system:authenticated'], s: 30 });
    const l = look([...clients, serving], ready, false);
    expect(l.approve.map((a) => [a.csr.metadata!.name, a.kind])).toEqual([['s-w1', 'serving']]);
    expect(look([...clients, { ...serving, status: clients[0]!.status }], ready, false).waiting).toEqual({});
  });

  it('a node without a Node object is waited for, and its CSRs still pass (it is in the inventory)', () => {
    const l = look([csr('c-w1', { req: 'w1', s: 20 })], [node('m1', true, '10.0.0.1')]);
    expect(l.approve.map((a) => a.csr.metadata!.name)).toEqual(['c-w1']);
    expect(l.waiting.w1).toEqual(['client CSR c-w1 pending', 'not registered (no Node object)']);
  });
});

describe('hostile and failing CSRs during a renewal', () => {
  let req2: Record<string, string>;
  beforeAll(async () => {
    req2 = {
      w1: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:w1')),
      w1b: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:w1')),
      m1: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:m1')),
    };
  });
  const at = (s: number) => new Date(Date.UTC(2026, 10, 27, 10, 0, s));
  const csr = (name: string, o: { req: string; s: number; user?: string; groups?: string[]; approved?: boolean; denied?: boolean }): Csr => ({
    metadata: { name, uid: `uid-${name}`, creationTimestamp: at(o.s) },
    spec: { request: req2[o.req]!, signerName: KUBELET_CLIENT_SIGNER, usages: ['digital signature', 'client auth'], username: o.user ?? 'system:bootstrap:abcdef', groups: o.groups ?? ['system:bootstrappers', 'system:authenticated'] },
    status: o.approved ? { conditions: [{ type: 'Approved', status: 'True', reason: 'EtcdMedicApprove', message: 'Approved by Slack user UBOB with etcd-medic' }], certificate: 'Y2VydA==' } : o.denied ? { conditions: [{ type: 'Denied', status: 'True', reason: 'KubectlDeny' }] } : {},
  });
  const node = (name: string, ready: boolean, ip: string): KubeNode => ({ metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: ip }], conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown' }] } });
  const nodes = [node('m1', false, '10.0.0.1'), node('w1', false, '10.0.1.1')];
  const look = (csrs: Csr[], nodeSince?: Record<string, Date>) => lookAtRenewal({ csrs, nodes, names: ['m1', 'w1'], since: at(0), nodeSince, policy: policyContext(nodes, prod), servingGraceOver: () => true });

  it("a second client CSR for a node (someone else holding a bootstrap token asks for its identity): neither is approved by the bot, both flagged saying why", () => {
    const l = look([csr('kubelets', { req: 'w1', s: 20 }), csr('intruder', { req: 'w1b', s: 21 }), csr('c-m1', { req: 'm1', s: 20 })]);
    expect(l.approve.map((a) => a.csr.metadata!.name)).toEqual(['c-m1']);
    expect(l.flagged.map((f) => f.csr.metadata!.name)).toEqual(['kubelets', 'intruder']);
    expect(l.flagged[0]!.verdict.reasons.join('; ')).toContain('w1 has 2 client CSRs since its kubelet was restarted (also intruder (pending))');
    // One approved already (the bot won the race for the intruder, or a person approved it): the next is not approved either.
    const after = look([csr('intruder', { req: 'w1b', s: 20, approved: true }), csr('kubelets', { req: 'w1', s: 21 })]);
    expect(after.approve.map((a) => a.csr.metadata!.name)).toEqual([]);
    expect(after.flagged.map((f) => f.csr.metadata!.name)).toEqual(['kubelets']);
    // Once a person denied the intruder, the kubelet's own passes again.
    const denied = look([csr('intruder', { req: 'w1b', s: 20, denied: true }), csr('kubelets', { req: 'w1', s: 21 })]);
    expect(denied.approve.map((a) => a.csr.metadata!.name)).toEqual(['kubelets']);
  });

  it('a client CSR filed before the node\'s own kubelet was stopped is not the restarted kubelet\'s: not approved, even after the run began', () => {
    // The run began at 0; w1's kubelet was stopped at 100 (its restart step started then): a CSR for w1 filed at 30 is someone else's.
    const l = look([csr('early', { req: 'w1', s: 30 }), csr('c-m1', { req: 'm1', s: 40 })], { w1: at(100) });
    expect(l.approve.map((a) => a.csr.metadata!.name)).toEqual(['c-m1']);
    const from = renewalSince({ createdAt: at(0).toISOString(), steps: [{ kind: 'kubelet-rebootstrap', params: { node: 'w1' } }, { kind: 'kubelet-csrs', params: {} }], records: [{ startedAt: at(200).toISOString() }, {}] } as never);
    expect(from.nodeSince).toEqual({ w1: at(140) });
  });

  const renewRun = () => {
    const out = planKubeletsRenew(inv, prod, state, { ...req, nodes: ['w1'] }, now);
    if (!out.ok) throw new Error(out.reason);
    const run = out.run;
    run.records[0]!.startedAt = now.toISOString();
    run.records[1]!.approvedBy = 'UBOB';
    return run;
  };
  // As the run's thread does: each uid announced once per run.
  const threadOf = (lines: string[]) => {
    const posted = new Set<string>();
    return {
      announce: async (uids: string[], text: string) => {
        const fresh = uids.filter((u) => !posted.has(u));
        fresh.forEach((u) => posted.add(u));
        if (fresh.length) lines.push(`${uids.join(',')} ${text}`);
        return fresh.length > 0;
      },
      show: async () => [],
    };
  };
  const quiet = { info() {}, warn() {}, error() {}, debug() {} } as never;

  it('approvals the API refuses (forbidden) are said once in the thread, and the step does not spin: it looks again only at its pace', async () => {
    const run = renewRun();
    let reads = 0;
    let approves = 0;
    const lines: string[] = [];
    const api: RenewalApi = {
      read: async () => (reads++, { csrs: [csr('c-w1', { req: 'w1', s: 0 })], nodes }),
      approve: async () => (approves++, { ok: false, code: 'forbidden', message: 'forbidden: the bot may not approve CSRs' }) as never,
    };
    let clock = now.getTime();
    const res = await approveKubeletCsrs({ cluster: prod, log: quiet, pollMs: 1, now: () => new Date((clock += 1000)), csrThread: () => threadOf(lines) }, run, 1, { ...(run.steps[1] as object), params: { nodes: ['w1'], waitSeconds: 10 } } as never, undefined, undefined, api);
    // One read per second of (fake) time: 10 s, not thousands of reads and approvals in a hot loop.
    expect(reads).toBeLessThanOrEqual(6);
    expect(approves).toBe(reads);
    expect(lines.filter((l) => /Could not approve/.test(l))).toHaveLength(1);
    expect(lines[0]).toContain('c-w1 (client for w1): forbidden: the bot may not approve CSRs');
    expect(res.caveat).toContain('w1: client CSR c-w1 pending');
    expect(res.offer).toEqual({ command: 'csr', args: ['prod'], label: '/etcd csr prod' });
  });

  it('a kubelet found not running while its CSRs are waited for is named at once, and the wait ends then, not at its bound', async () => {
    const run = renewRun();
    const lines: string[] = [];
    // w1 files nothing (its kubelet died after it was started); its Node stays NotReady.
    const api: RenewalApi = { read: async () => ({ csrs: [], nodes: nodes.map((n) => (n.metadata?.name === 'w1' ? { ...n, status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } } : n)) as never }), approve: async () => ({ ok: true }) as never };
    const asked: string[] = [];
    const units = async (n: string) => (asked.push(n), { unit: 'kubelet', state: 'activating' });
    let clock = now.getTime();
    const res = await approveKubeletCsrs({ cluster: prod, log: quiet, pollMs: 1, unitLookMs: 5000, now: () => new Date((clock += 1000)), csrThread: () => threadOf(lines) }, run, 1, { ...(run.steps[1] as object), params: { nodes: ['w1'], waitSeconds: 600 } } as never, undefined, undefined, api, units);
    expect(asked).toEqual(['w1']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^kubelet-down:r-[0-9a-f]+:w1 :x: The kubelet of w1 is not running \(`systemctl is-active kubelet`: activating\) \d+ s into the wait for its CSRs/);
    expect(res.caveat).toMatch(/^kubelets not all back: w1: its kubelet is not running \(`systemctl is-active kubelet`: activating\), NotReady \(seen after [\d.]+ s, 1 look; the wait ends now rather than at its 600 s bound\)/);
    // One that runs is not named, and the step waits on for its CSRs.
    const running = await approveKubeletCsrs({ cluster: prod, log: quiet, pollMs: 1, unitLookMs: 1000, now: () => new Date((clock += 1000)), csrThread: () => threadOf([]) }, run, 1, { ...(run.steps[1] as object), params: { nodes: ['w1'], waitSeconds: 5 } } as never, undefined, undefined, api, async () => ({ unit: 'kubelet', state: 'active' }));
    expect(running.caveat).toMatch(/^kubelets not all back: w1: NotReady \(checked for/);
  });

  it('a worker that lost the run lease approves nothing more (the run may be cancelled or taken over meanwhile)', async () => {
    const run = renewRun();
    let approves = 0;
    const lost = new AbortController();
    const api: RenewalApi = {
      read: async () => {
        lost.abort(); // the fault: Redis is gone long enough for the lease to lapse while this look was made
        return { csrs: [csr('c-w1', { req: 'w1', s: 0 })], nodes };
      },
      approve: async () => (approves++, { ok: true }) as never,
    };
    await expect(approveKubeletCsrs({ cluster: prod, log: quiet, pollMs: 1 }, run, 1, run.steps[1] as never, undefined, lost.signal, api)).rejects.toThrow(/lost the run lease: it approves nothing more/);
    expect(approves).toBe(0);
  });
});

describe('the host scripts of a kubelet restart (run here by bash, with a systemctl that logs)', () => {
  let dir: string;
  let bin: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'medic-kubelet-'));
    bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'systemctl'), `#!/bin/bash\necho "$@" >> ${dir}/systemctl.log\n[ "$1" = is-active ] && echo active\nexit 0\n`);
    chmodSync(join(bin, 'systemctl'), 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const host = (name: string) => {
    const root = join(dir, name);
    mkdirSync(join(root, 'pki'), { recursive: true });
    writeFileSync(join(root, 'pki/kubelet-client-2026.pem'), 'OLD CERT');
    symlinkSync(join(root, 'pki/kubelet-client-2026.pem'), join(root, 'pki/kubelet-client-current.pem'));
    writeFileSync(join(root, 'kubelet.conf'), 'old kubeconfig');
    writeFileSync(join(root, 'bootstrap.conf'), 'token: abc');
    const aside = join(root, 'aside');
    return { node: name, unit: 'kubelet', cert: join(root, 'pki/kubelet-client-current.pem'), kubeconfig: join(root, 'kubelet.conf'), bootstrapConfig: join(root, 'bootstrap.conf'), asideDir: aside, certAside: join(aside, 'kubelet-client-current.pem.r1'), kubeconfigAside: join(aside, 'kubelet.conf.r1'), marker: join(aside, 'kubelet-renew.r1') };
  };
  const bash = (script: string) => {
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const locked = (p: ReturnType<typeof host>, s: string) => underMemberLock({ path: memberLockPath(p.asideDir), waitSeconds: 5 }, s);
  const calls = () => (existsSync(join(dir, 'systemctl.log')) ? readFileSync(join(dir, 'systemctl.log'), 'utf8').trim().split('\n') : []);

  it('stops the kubelet, moves the link and the kubeconfig aside (the dated file stays), marks it; a second run moves nothing, not even a new certificate', () => {
    const p = host('a');
    const first = bash(locked(p, kubeletAsideScript(p)));
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`moved ${p.cert} (a link to ${join(dir, 'a/pki/kubelet-client-2026.pem')}, left in place) to ${p.certAside}`);
    expect(lstatSync(p.certAside).isSymbolicLink()).toBe(true);
    expect(readFileSync(p.certAside, 'utf8')).toBe('OLD CERT');
    expect(readFileSync(p.kubeconfigAside, 'utf8')).toBe('old kubeconfig');
    expect(existsSync(p.cert) || existsSync(p.kubeconfig)).toBe(false);
    expect(calls()).toEqual(['stop kubelet']);
    const start = bash(kubeletStartScript(p, 1)).out;
    expect(start).toContain('kubelet started (systemctl start kubelet): active');
    expect(start).toContain('still active 1 s after its start');
    expect(kubeletDown(start)).toBeNull();

    // The kubelet bootstrapped: a second generation. The step run again (its worker died) must leave it.
    writeFileSync(join(dir, 'a/pki/kubelet-client-2027.pem'), 'NEW CERT');
    symlinkSync(join(dir, 'a/pki/kubelet-client-2027.pem'), p.cert);
    writeFileSync(p.kubeconfig, 'new kubeconfig');
    const again = bash(locked(p, kubeletAsideScript(p)));
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('this run already moved the kubelet files aside and started it again');
    expect(realpathSync(p.cert)).toBe(join(dir, 'a/pki/kubelet-client-2027.pem'));
    expect(readFileSync(p.kubeconfig, 'utf8')).toBe('new kubeconfig');
    expect(readdirSync(p.asideDir).sort()).toEqual(['kubelet-client-current.pem.r1', 'kubelet-renew.r1', 'kubelet.conf.r1', 'member.lock']);
    // Started once, then watched: is-active asked again and again while it settles.
    expect(calls().filter((c) => c !== 'is-active kubelet')).toEqual(['stop kubelet', 'start kubelet']);
    expect(calls().filter((c) => c === 'is-active kubelet').length).toBeGreaterThan(2);
  });

  it('a kubelet whose unit goes to auto-restart right after its start is named as down, with systemctl\'s word for it', () => {
    const p = host('e');
    // The fault: the kubelet's process exits at once; systemd shows its unit activating (auto-restart).
    const flapping = join(dir, 'flapping-bin');
    mkdirSync(flapping, { recursive: true });
    writeFileSync(join(flapping, 'systemctl'), `#!/bin/bash\nn=$(cat ${dir}/flap 2>/dev/null || echo 0); echo $((n+1)) > ${dir}/flap\n[ "$1" = is-active ] || exit 0\nif [ "$n" -lt 2 ]; then echo active; exit 0; fi\necho activating; exit 3\n`);
    chmodSync(join(flapping, 'systemctl'), 0o755);
    const r = spawnSync('bash', ['-c', kubeletStartScript(p, 2)], { encoding: 'utf8', env: { ...process.env, PATH: `${flapping}:${process.env.PATH}` } });
    expect(r.status).toBe(0);
    expect(kubeletDown(r.stdout)).toBe('activating');
    expect(r.stdout).not.toContain('still active');
    // A start that systemctl itself refuses is named with its words.
    writeFileSync(join(flapping, 'systemctl'), `#!/bin/bash\n[ "$1" = start ] && { echo "Job for kubelet.service failed because the control process exited with error code." >&2; exit 1; }\necho active\n`);
    const refused = spawnSync('bash', ['-c', kubeletStartScript(p, 2)], { encoding: 'utf8', env: { ...process.env, PATH: `${flapping}:${process.env.PATH}` } });
    expect(kubeletDown(refused.stdout)).toBe('start-failed: Job for kubelet.service failed because the control process exited with error code.');
  });

  it('an attempt that died between the two moves: the second moves only what is left, never the first twice', () => {
    const p = host('b');
    mkdirSync(p.asideDir);
    // The first attempt moved the certificate, then died.
    spawnSync('mv', [p.cert, p.certAside]);
    const r = bash(locked(p, kubeletAsideScript(p)));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`${p.cert} already aside at ${p.certAside} (an earlier attempt of this step)`);
    expect(r.out).toContain(`moved ${p.kubeconfig} to ${p.kubeconfigAside}`);
    expect(existsSync(p.marker)).toBe(true);
  });

  it('a move that fails once the kubelet is stopped (a read-only disk) puts back what was aside and starts the kubelet again before the step fails', () => {
    const p = host('d');
    // The fault: mv refuses the kubeconfig (read-only file system), after the certificate link already moved.
    const faulty = join(dir, 'faulty-bin');
    mkdirSync(faulty, { recursive: true });
    writeFileSync(join(faulty, 'mv'), `#!/bin/bash\ncase "$1" in *kubelet.conf) echo "mv: cannot move '$1': Read-only file system" >&2; exit 1;; esac\nexec /bin/mv "$@"\n`);
    chmodSync(join(faulty, 'mv'), 0o755);
    const before = calls().length;
    const r = spawnSync('bash', ['-c', locked(p, kubeletAsideScript(p))], { encoding: 'utf8', env: { ...process.env, PATH: `${faulty}:${bin}:${process.env.PATH}` } });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(1);
    expect(r.stderr).toContain('its files put back where they were and it was started again (active): nothing was renewed on this node');
    expect(calls().slice(before)).toEqual(['stop kubelet', 'start kubelet', 'is-active kubelet']);
    expect(lstatSync(p.cert).isSymbolicLink()).toBe(true);
    expect(readFileSync(p.cert, 'utf8')).toBe('OLD CERT');
    expect(readFileSync(p.kubeconfig, 'utf8')).toBe('old kubeconfig');
    expect(existsSync(p.certAside) || existsSync(p.marker)).toBe(false);
  });

  it('an attempt cut off after it stopped the kubelet and moved its certificate, the bootstrap kubeconfig gone since: the refusal puts the certificate back and starts the kubelet, and says so', () => {
    const p = host('f');
    mkdirSync(p.asideDir);
    // What the cut-off attempt left (its session's script killed): the begun file, the kubelet stopped, the link aside.
    writeFileSync(begunOf(p), 'begun');
    spawnSync('mv', [p.cert, p.certAside]);
    rmSync(p.bootstrapConfig);
    const before = calls().length;
    const r = bash(locked(p, kubeletAsideScript(p)));
    expect(r.code, r.out).toBe(NO_BOOTSTRAP_EXIT);
    expect(r.out).toContain('An earlier attempt of this step, cut off, had stopped the kubelet');
    expect(r.out).toContain('its files put back where they were and it was started again (active): nothing was renewed on this node');
    expect(r.out).not.toContain('nothing was stopped or moved');
    expect(calls().slice(before)).toEqual(['start kubelet', 'is-active kubelet']);
    expect(lstatSync(p.cert).isSymbolicLink()).toBe(true);
    expect(readFileSync(p.cert, 'utf8')).toBe('OLD CERT');
    expect(readFileSync(p.kubeconfig, 'utf8')).toBe('old kubeconfig');
    expect(readdirSync(p.asideDir).sort()).toEqual(['member.lock']);
  });

  it('the put-back the step runs when it refuses to go on after a cut-off attempt: back only where nothing took the place, and nothing once the marker is there', () => {
    const p = host('g');
    mkdirSync(p.asideDir);
    writeFileSync(begunOf(p), 'begun');
    spawnSync('mv', [p.cert, p.certAside]);
    spawnSync('mv', [p.kubeconfig, p.kubeconfigAside]);
    // Something wrote a kubeconfig in its place meanwhile: that one stays, and the aside copy is kept (said so).
    writeFileSync(p.kubeconfig, 'another kubeconfig');
    const r = bash(locked(p, kubeletPutBackScript(p)));
    expect(r.code, r.out).toBe(0);
    expect(readFileSync(p.cert, 'utf8')).toBe('OLD CERT');
    expect(readFileSync(p.kubeconfig, 'utf8')).toBe('another kubeconfig');
    expect(readFileSync(p.kubeconfigAside, 'utf8')).toBe('old kubeconfig');
    expect(r.out).toContain('its files could not all be put back');
    expect(r.out).not.toContain('nothing was renewed');
    expect(existsSync(begunOf(p))).toBe(true);

    const q = host('h');
    mkdirSync(q.asideDir);
    spawnSync('mv', [q.cert, q.certAside]);
    spawnSync('mv', [q.kubeconfig, q.kubeconfigAside]);
    writeFileSync(q.marker, 'both aside');
    const before = calls().length;
    const left = bash(locked(q, kubeletPutBackScript(q)));
    expect(left.code, left.out).toBe(0);
    expect(left.out).toContain('left as it is');
    expect(existsSync(q.cert) || existsSync(q.kubeconfig)).toBe(false);
    expect(calls().length).toBe(before);
  });

  it('an attempt cut off right after it stopped the kubelet (nothing moved yet): the step run again moves both and marks it; the begun file goes', () => {
    const p = host('i');
    mkdirSync(p.asideDir);
    writeFileSync(begunOf(p), 'begun');
    const r = bash(locked(p, kubeletAsideScript(p)));
    expect(r.code, r.out).toBe(0);
    expect(readFileSync(p.certAside, 'utf8')).toBe('OLD CERT');
    expect(readFileSync(p.kubeconfigAside, 'utf8')).toBe('old kubeconfig');
    expect(readdirSync(p.asideDir).sort()).toEqual(['kubelet-client-current.pem.r1', 'kubelet-renew.r1', 'kubelet.conf.r1', 'member.lock']);
  });

  it('runs with only the commands the readiness check asks each host for (a host lacking one is refused at planning, not mid-step)', () => {
    const p = host('j');
    // A PATH holding exactly the step's tools (and the logging systemctl): a command the scripts use beyond them fails here.
    const only = join(dir, 'only-bin');
    mkdirSync(only, { recursive: true });
    for (const tool of kubeletRebootstrapStep.hosts.tools) {
      if (tool === 'systemctl') continue;
      const at = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      expect(at, tool).not.toBe('');
      symlinkSync(at, join(only, tool));
    }
    symlinkSync(join(bin, 'systemctl'), join(only, 'systemctl'));
    const run = (script: string) => spawnSync('/bin/bash', ['--norc', '-c', script], { encoding: 'utf8', env: { PATH: only, HOME: dir } });
    const read = run(checkedReadScript(p.bootstrapConfig));
    expect(read.status, `${read.stdout}${read.stderr}`).toBe(0);
    const aside = run(locked(p, kubeletAsideScript(p)));
    expect(aside.status, `${aside.stdout}${aside.stderr}`).toBe(0);
    expect(lstatSync(p.certAside).isSymbolicLink()).toBe(true);
    const started = run(kubeletStartScript(p, 1));
    expect(started.status, `${started.stdout}${started.stderr}`).toBe(0);
    expect(kubeletDown(started.stdout)).toBeNull();
    // The put-back of a cut-off attempt, too.
    const q = host('k');
    mkdirSync(q.asideDir);
    writeFileSync(begunOf(q), 'begun');
    spawnSync('mv', [q.cert, q.certAside]);
    const back = run(locked(q, kubeletPutBackScript(q)));
    expect(back.status, `${back.stdout}${back.stderr}`).toBe(0);
    expect(back.stderr).toContain('nothing was renewed on this node');
    expect(existsSync(begunOf(q))).toBe(false);
  });

  it('refuses, stopping and moving nothing, a node without a bootstrap kubeconfig', () => {
    const p = host('c');
    rmSync(p.bootstrapConfig);
    const before = calls().length;
    const r = bash(locked(p, kubeletAsideScript(p)));
    expect(r.code).toBe(NO_BOOTSTRAP_EXIT);
    expect(r.out).toContain(`refused: there is no bootstrap kubeconfig at ${p.bootstrapConfig}`);
    expect(calls().length).toBe(before);
    expect([existsSync(p.cert), existsSync(p.kubeconfig), existsSync(p.marker)]).toEqual([true, true, false]);
  });
});
