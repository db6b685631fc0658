import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memberRow, threeMasters } from '../support/fixtures.js';
import { stepOf } from '../support/steps.js';
import type { ClusterConfig } from '../../src/config/schema.js';
import type { ReplaceHosts } from '../../src/runbook/rebuilt-host.js';
import { planReplace } from '../../src/runbook/replace-plan.js';
import type { ObservedState } from '../../src/runbook/types.js';
import type { MemberRow, StatusReport } from '../../src/status/assess.js';
import { hostNeeds } from '../../src/worker/host-readiness.js';
import { platformOf } from '../../src/platform/index.js';

const { inventory, cluster } = threeMasters('{ roles: { approve: [UBOB], destroy: [UALICE] } }');
const row = (i: number, up: boolean): MemberRow => memberRow(i, up ? { raftIndex: 100, revision: 50, leader: '161' } : null, { isLeader: i === 1 });
const report = (members: MemberRow[]): StatusReport => ({ cluster: 'prod', at: new Date(), tookMs: 1, verdict: 'DEGRADED', summary: '', next: '', voters: 3, quorum: 2, healthyVoters: 2, tolerance: 0, clusterIdHex: '1', leaderHex: 'a1', members, warnings: [] });
const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 100, revision: 50, at: '2026-11-23T03:00:00.000Z' };
const req = { runId: 'r-0000abcd', target: 'm3', force: false, requestedBy: 'UALICE', channelId: 'CINC' };
const now = new Date('2026-11-23T03:00:00Z');
const m3Down = report([row(1, true), row(2, true), row(3, false)]);

/** The cluster's etcd CA, as every healthy master holds it (sha256 fingerprint). */
const CA = `${'AB:'.repeat(31)}CD`;
const peer = (name: string, over: Partial<ReplaceHosts['peers'][number]> = {}) => ({ name, hasConfig: true, hasCaCert: true, hasCaKey: true, caSha256: CA, roles: ['peer', 'server'], ...over });
const certsOk = { peer: null, server: null, 'healthcheck-client': 'no healthcheck-client.crt' };
const hosts = (target: Partial<NonNullable<ReplaceHosts['target']>>, peers = [peer('m1'), peer('m2')]): ReplaceHosts => ({
  target: { name: 'm3', hasConfig: true, pki: { ca: null, certs: certsOk, caSha256: CA }, ...target },
  peers,
});
const wiped = { hasConfig: false, pki: { ca: 'no /etc/kubernetes/pki/etcd/ca.crt', certs: { peer: 'no peer.crt', server: 'no server.crt', 'healthcheck-client': 'no healthcheck-client.crt' }, caSha256: CA } };
const plan = (h?: ReplaceHosts, c: ClusterConfig = cluster) => planReplace(inventory, c, m3Down, state, req, now, h);
const kinds = (h?: ReplaceHosts) => {
  const out = plan(h);
  if (!out.ok) throw new Error(out.reason);
  return out.run.steps.map((s) => s.kind);
};

describe('a replace of a member whose host was rebuilt', () => {
  it('a host with its manifest and trusted certificates gets the plan it always had', () => {
    const usual = kinds(undefined);
    expect(kinds(hosts({}))).toEqual(usual);
    expect(usual).not.toContain('issue-certs');
    // Not looked at (its host could not be reached): the readiness check refuses it, the plan is the usual.
    expect(kinds({ target: null, peers: [] })).toEqual(usual);
  });

  it('no manifest, no pki: certificates issued before the membership changes, the manifest built from the leader\'s', () => {
    const out = plan(hosts(wiped));
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.map((s) => [s.kind, s.destructive])).toEqual([
      ['snapshot', false],
      ['issue-certs', true],
      ['member-remove', true],
      ['stop-and-move-aside', true],
      ['member-add-learner', false],
      ['write-manifest', false],
      ['wait-caught-up', false],
      ['promote', false],
      ['verify', false],
      ['kube-check', false],
    ]);
    const issue = stepOf(out.run.steps[1], 'issue-certs');
    expect(issue.host).toBe('m3');
    expect(issue.params.signer).toBe('m1');
    expect(issue.params.signerCaKey).toBe('/etc/kubernetes/pki/etcd/ca.key');
    expect(issue.params.caSha256).toBe(CA);
    expect(issue.params.staging).toBe('/etc/kubernetes/etcd-medic-aside/certs-r-0000abcd');
    // The peers have no healthcheck-client: none is issued (the profile's optional one).
    expect(issue.params.certs.map((c) => [c.role, c.cert, c.certAside, c.cn, c.dns, c.ips])).toEqual([
      ['peer', '/etc/kubernetes/pki/etcd/peer.crt', '/etc/kubernetes/etcd-medic-aside/peer.crt.r-0000abcd', 'm3', ['m3', 'localhost'], ['10.0.0.3', '127.0.0.1', '::1']],
      ['server', '/etc/kubernetes/pki/etcd/server.crt', '/etc/kubernetes/etcd-medic-aside/server.crt.r-0000abcd', 'm3', ['m3', 'localhost'], ['10.0.0.3', '127.0.0.1', '::1']],
    ]);
    expect(issue.operation).toContain('On core@10.0.0.3:22: openssl genpkey (RSA 2048) in /etc/kubernetes/etcd-medic-aside/certs-r-0000abcd, the keys never leave m3');
    expect(issue.operation).toContain('signed on core@10.0.0.1:22 with the etcd CA /etc/kubernetes/pki/etcd/ca.crt and its key /etc/kubernetes/pki/etcd/ca.key, which never leaves m1');
    expect(issue.operation).toContain('peer (CN=m3, DNS:m3,DNS:localhost,IP:10.0.0.3,IP:127.0.0.1,IP:::1; serverAuth+clientAuth) → /etc/kubernetes/pki/etcd/peer.crt');
    const write = stepOf(out.run.steps[5], 'write-manifest');
    expect(write.params).toMatchObject({ templateFrom: 'm1', templateConfig: '/etc/kubernetes/manifests/etcd.yaml', templateIp: '10.0.0.1', targetIp: '10.0.0.3', targetPkiDir: '/etc/kubernetes/pki/etcd' });
    expect(write.operation).toContain("from m1's manifest (/etc/kubernetes/manifests/etcd.yaml on core@10.0.0.1:22) adapted to 10.0.0.3: name, advertise and listen URLs, data dir, certificate paths");
    expect(out.run.rationale).toBe(
      "m3's host looks rebuilt (no manifest at /etc/kubernetes/manifests/etcd.yaml; CA: no /etc/kubernetes/pki/etcd/ca.crt; peer: no peer.crt; server: no server.crt): its manifest is built from m1's, adapted to 10.0.0.3; its certificates (peer, server) are issued from the etcd CA, signed on m1, whose CA key stays there; the new keys are made on m3 and stay there.",
    );
  });

  it('a manifest left but certificates the cluster does not trust: issued only once etcd is stopped there', () => {
    const k = kinds(hosts({ pki: { ca: null, certs: { ...certsOk, peer: 'peer.crt is not signed by the cluster\'s etcd CA' }, caSha256: CA } }));
    expect(k.slice(0, 5)).toEqual(['snapshot', 'member-remove', 'stop-and-move-aside', 'issue-certs', 'member-add-learner']);
    const out = plan(hosts({ pki: { ca: null, certs: { ...certsOk, server: 'no server.crt' }, caSha256: CA } }));
    if (!out.ok) throw new Error(out.reason);
    expect(stepOf(out.run.steps.find((s) => s.kind === 'write-manifest'), 'write-manifest').params.templateFrom).toBeUndefined();
    expect(out.run.rationale).toMatch(/^m3's host has its config but not its certificates \(server: no server\.crt\)/);
  });

  it('a peer with the CA key is the signer, the first healthy one with a manifest the template; the optional healthcheck cert where peers have one', () => {
    const out = plan(hosts(wiped, [peer('m1', { hasCaKey: false, hasConfig: false }), peer('m2', { roles: ['peer', 'server', 'healthcheck-client'] })]));
    if (!out.ok) throw new Error(out.reason);
    const issue = stepOf(out.run.steps[1], 'issue-certs');
    expect(issue.params.signer).toBe('m2');
    expect(issue.params.certs.map((c) => c.role)).toEqual(['peer', 'server', 'healthcheck-client']);
    expect(issue.params.certs[2]).toMatchObject({ cn: 'kube-etcd-healthcheck-client', o: 'system:masters', usages: ['clientAuth'], dns: [], ips: [] });
    expect(stepOf(out.run.steps[5], 'write-manifest').params.templateFrom).toBe('m2');
  });

  it('the signer holds the CA the certificates were judged against: a master with another CA\'s key is not asked to sign', () => {
    // The fault: the leader (asked first) holds a key and certificate of another CA (rotated by hand, or restored from elsewhere).
    const other = `${'EF:'.repeat(31)}01`;
    const out = plan(hosts(wiped, [peer('m1', { caSha256: other }), peer('m2')]));
    if (!out.ok) throw new Error(out.reason);
    const issue = stepOf(out.run.steps[1], 'issue-certs');
    expect([issue.params.signer, issue.params.caSha256]).toEqual(['m2', CA]);
    const none = plan(hosts(wiped, [peer('m1', { caSha256: other }), peer('m2', { hasCaKey: false })]));
    expect(!none.ok && none.reason).toMatch(/\(m1: another CA \(sha256 EF:EF:.*:01\) than the one the others trust \(sha256 AB:AB:.*:CD\), m2: no CA key\)/);
  });

  it('a master without openssl is not planned to sign (the readiness check would refuse the whole replace for it): another one holding the key is', () => {
    // The fault: the leader (asked first) has the CA key but no openssl on its PATH.
    const out = plan(hosts(wiped, [peer('m1', { noOpenssl: true }), peer('m2')]));
    if (!out.ok) throw new Error(out.reason);
    const issue = stepOf(out.run.steps[1], 'issue-certs');
    expect(issue.params.signer).toBe('m2');
    // It stays a fallback: the step looks there again when it runs and passes it over while openssl is missing.
    expect(issue.params.fallbackSigners?.map((f) => f.name)).toEqual(['m1']);
    const none = plan(hosts(wiped, [peer('m1', { noOpenssl: true }), peer('m2', { hasCaKey: false })]));
    expect(!none.ok && none.reason).toMatch(/\(m1: no openssl \(the openssl package\) to sign with, m2: no CA key\)/);
  });

  it('refuses, before any step, when no healthy master holds the CA key or a manifest to lend', () => {
    const noKey = plan(hosts(wiped, [peer('m1', { hasCaKey: false }), peer('m2', { hasCaKey: false })]));
    expect(noKey.ok).toBe(false);
    if (!noKey.ok) {
      expect(noKey.reason).toMatch(/^m3's etcd certificates are not ones the cluster trusts for it \(CA: .*\), and no healthy master holds the etcd CA key at \/etc\/kubernetes\/pki\/etcd\/ca\.key to sign new ones \(m1: no CA key, m2: no CA key\)\./);
      expect(noKey.reason).toContain('Nothing was changed.');
    }
    const noManifest = plan(hosts(wiped, [peer('m1', { hasConfig: false })]));
    expect(!noManifest.ok && noManifest.reason).toMatch(/^m3's host has no etcd manifest \(\/etc\/kubernetes\/manifests\/etcd\.yaml\): it looks rebuilt, and no healthy master's manifest could be read to build one from \(m1\)/);
    // No healthy peer could be looked at over SSH (the member's own host is never its own template).
    const unseen = plan(hosts(wiped, [peer('m3')]));
    expect(!unseen.ok && unseen.reason).toMatch(/none was reachable over SSH/);
    // Without the cluster's CA to judge against, a rebuilt host is refused; one with its manifest keeps what it has.
    expect(plan(hosts({ ...wiped, pki: null })).ok).toBe(false);
    expect(kinds(hosts({ pki: null }))).not.toContain('issue-certs');
  });

  it('a host planned with its manifest but rebuilt before the first destructive step is refused by the readiness check, not at the write after the member was removed', () => {
    const out = plan(hosts({}));
    if (!out.ok) throw new Error(out.reason);
    const remove = out.run.steps.findIndex((s) => s.kind === 'member-remove');
    const write = stepOf(out.run.steps.find((s) => s.kind === 'write-manifest'), 'write-manifest');
    // What the readiness check runs on m3 before the member-remove gate: the layout lines of the steps from there on.
    const layout = hostNeeds(out.run.steps, remove, platformOf(cluster).tools).uses.get('m3')!.flatMap((u) => u.layout ?? []);
    const root = mkdtempSync(join(tmpdir(), 'medic-rebuilt-'));
    try {
      const at = (p: string) => join(root, p);
      const onHost = (lines: string[]) => spawnSync('bash', ['-c', lines.join('\n').replaceAll('/etc/kubernetes/', `${root}/`)], { encoding: 'utf8' }).stdout;
      // The fault: m3's machine reinstalled after planning, with its SSH host key kept: no manifest, nothing aside.
      expect(onHost(layout)).toBe(
        `layout:there is no etcd config at ${at('manifests/etcd.yaml')} (nor the copy this run keeps, ${at(`etcd-medic-aside/etcd.yaml.${req.runId}`)}): the host had one when the replace was planned, so it looks rebuilt since; nothing would start the new member there. Ask for the replace again: its plan then builds the config from a healthy peer's\n`,
      );
      expect(write.params.configAside).toBe(`/etc/kubernetes/etcd-medic-aside/etcd.yaml.${req.runId}`);
      // As planned (the manifest there), or once this run moved it aside: ready.
      mkdirSync(at('manifests'), { recursive: true });
      writeFileSync(at('manifests/etcd.yaml'), 'kind: Pod\n');
      expect(onHost(layout)).toBe('');
      mkdirSync(at('etcd-medic-aside'));
      renameSync(at('manifests/etcd.yaml'), at(`etcd-medic-aside/etcd.yaml.${req.runId}`));
      expect(onHost(layout)).toBe('');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    // A plan that builds the config from a peer's counts on none being there.
    const rebuilt = plan(hosts(wiped));
    if (!rebuilt.ok) throw new Error(rebuilt.reason);
    expect(hostNeeds(rebuilt.run.steps, 0).uses.get('m3')!.flatMap((u) => u.layout ?? [])).toEqual([]);
  });

  it('needs openssl on the rebuilt host and on the signer, checked before the plan starts and before the step', () => {
    const out = plan(hosts(wiped));
    if (!out.ok) throw new Error(out.reason);
    const needs = hostNeeds(out.run.steps, 0, platformOf(cluster).tools);
    const issue = (m: string) => needs.uses.get(m)!.find((u) => u.title.startsWith('Issue'))!;
    expect(issue('m3').tools).toEqual(expect.arrayContaining(['openssl', 'base64', 'sha256sum', 'flock', 'cp', 'mv', 'chmod']));
    expect(issue('m1').tools).toEqual(expect.arrayContaining(['openssl', 'base64']));
    expect(needs.uses.get('m1')!.map((u) => u.title)).toEqual(["Issue m3's etcd certificates from the cluster's CA", 'Start etcd on m3 with state "existing"']);
  });

  it('on OpenShift 3 masters the CA key is looked for where openshift-ansible keeps it', () => {
    const ocp = { ...cluster, platform: { kind: 'systemd', unit: 'etcd', confFile: '/etc/etcd/etcd.conf', dataDir: '/var/lib/etcd', pkiDir: '/etc/etcd', apiserverUnits: ['atomic-openshift-master-api'], masterConfig: '/etc/origin/master/master-config.yaml', flanneldConfig: '/etc/sysconfig/flanneld' } } as ClusterConfig;
    const out = plan(hosts(wiped), ocp);
    if (!out.ok) throw new Error(out.reason);
    const issue = stepOf(out.run.steps[1], 'issue-certs');
    expect([issue.params.signerCaKey, issue.params.caCert, issue.params.certs.map((c) => c.cert)]).toEqual(['/etc/etcd/ca/ca.key', '/etc/etcd/ca.crt', ['/etc/etcd/peer.crt', '/etc/etcd/server.crt']]);
    expect(out.run.rationale).toMatch(/no etcd\.conf at \/etc\/etcd\/etcd\.conf/);
  });
});
