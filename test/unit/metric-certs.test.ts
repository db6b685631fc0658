import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventorySchema } from '../../src/config/schema.js';
import { makeCa } from '../../src/lab/certs.js';
import { etcdMemberManifest } from '../../src/lab/openshift4.js';
import { proxyFlag } from '../../src/platform/metrics-proxy.js';
import { otherCaOn, platformOf } from '../../src/platform/index.js';
import { podFlag, withPodFlags } from '../../src/platform/pod-manifest.js';
import { rebuiltChoice, type PeerLook, type ReplaceHosts } from '../../src/runbook/rebuilt-host.js';
import { issueCertsStep } from '../../src/steps/issue-certs.js';
import { certPlanOf, csrScript, installScript, parsePkiLook, pemBlock, pkiFiles, pkiLookLines, signerPlaces, signerProblem, signScript, type CertParams } from '../../src/worker/steps/cert-steps.js';

const DNS = 'etcd-2.prod.example.com';
const PKI = '/etc/ssl/etcd';
const manifest = etcdMemberManifest({ name: 'm3', ip: '10.0.0.3', dataDir: '/var/lib/etcd', pkiDir: PKI, initialCluster: 'm1=https://10.0.0.1:2380', state: 'existing', token: 't', environmentFile: '/run/etcd/environment' });

const ssh = { user: 'core', keyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` };
const cluster = inventorySchema.parse({
  clusters: [{ name: 'prod', etcd: { endpoints: ['https://10.0.0.1:2379'] }, platform: { kind: 'openshift4', manifestFile: 'etcd-member.yaml' }, members: ['m1', 'm2', 'm3'].map((name, i) => ({ name, host: `10.0.0.${i + 1}`, ssh })) }],
}).clusters[0]!;
const m3 = cluster.members[2]!;
const ocp4 = platformOf(cluster);

describe("the etcd-metrics container's flags are its own, not etcd's", () => {
  it('reads --cert-file/--key-file/--trusted-ca-file of the grpc-proxy from that container, and etcd\'s from the etcd-member container', () => {
    expect(podFlag(manifest, 'cert-file')).toBe(`${PKI}/system:etcd-server:\${ETCD_DNS_NAME}.crt`);
    expect(podFlag(manifest, 'key-file')).toBe(`${PKI}/system:etcd-server:\${ETCD_DNS_NAME}.key`);
    expect(podFlag(manifest, 'trusted-ca-file')).toBe(`${PKI}/ca.crt`);
    expect(podFlag(manifest, 'listen-metrics-urls')).toBe('https://10.0.0.3:9978');
    // Flags only the proxy has are not etcd's either.
    expect(podFlag(manifest, 'metrics-addr')).toBeUndefined();
    expect(podFlag(manifest, 'cacert')).toBeUndefined();
    expect(proxyFlag(manifest, 'cert-file')).toBe(`${PKI}/system:etcd-metric:\${ETCD_DNS_NAME}.crt`);
    expect(proxyFlag(manifest, 'key-file')).toBe(`${PKI}/system:etcd-metric:\${ETCD_DNS_NAME}.key`);
    expect(proxyFlag(manifest, 'trusted-ca-file')).toBe(`${PKI}/metric-ca.crt`);
    expect(proxyFlag(manifest, 'cert')).toBe(`${PKI}/system:etcd-peer:\${ETCD_DNS_NAME}.crt`);
  });

  it("writing etcd's --cert-file changes the etcd container's line only; the proxy's stays as it was", () => {
    const out = withPodFlags(manifest, { 'cert-file': '/elsewhere/server.crt', 'initial-cluster-state': 'new' });
    expect(podFlag(out, 'cert-file')).toBe('/elsewhere/server.crt');
    expect(proxyFlag(out, 'cert-file')).toBe(`${PKI}/system:etcd-metric:\${ETCD_DNS_NAME}.crt`);
    expect(out.split('etcd grpc-proxy start')[1]).toBe(manifest.split('etcd grpc-proxy start')[1]);
    // The lab's 4.4+ pod has no metric pair: no proxy flags read as the member's metric pair there.
    expect(proxyFlag(manifest.replace(/--cert-file \S+ \\\n/, ''), 'cert-file')).toBeUndefined();
  });
});

describe('the metric pair of a 4.1–4.3 member', () => {
  it('is issued only where the cluster has a metric CA: the proxy names the pair, or the host has metric-ca.crt', () => {
    const noProxy = manifest.slice(0, manifest.indexOf('  - name: etcd-metrics')) + manifest.slice(manifest.indexOf('  hostNetwork: true'));
    const without = ocp4.pkiOnHost!(m3, { manifest: noProxy, environment: `ETCD_DNS_NAME=${DNS}`, files: ['ca.crt'], peerURLs: [] });
    expect('pki' in without && without.pki.certs.map((c) => c.role)).toEqual(['peer', 'server']);
    const byFiles = ocp4.pkiOnHost!(m3, { manifest: noProxy, environment: `ETCD_DNS_NAME=${DNS}`, files: ['ca.crt', 'metric-ca.crt'], peerURLs: [] });
    if (!('pki' in byFiles)) throw new Error(byFiles.problem);
    const metric = byFiles.pki.certs.find((c) => c.role === 'metric')!;
    expect([metric.cert, metric.key, metric.signedBy?.caCert]).toEqual([`${PKI}/system:etcd-metric:${DNS}.crt`, `${PKI}/system:etcd-metric:${DNS}.key`, `${PKI}/metric-ca.crt`]);
    // The address from the discovery output (ETCD_IPV4_ADDRESS) where the inventory names the host otherwise.
    const named = ocp4.pkiOnHost!({ ...m3, host: 'master-2.prod.example.com' }, { manifest, environment: `ETCD_IPV4_ADDRESS=10.9.9.9\nETCD_DNS_NAME=${DNS}`, files: [], peerURLs: [] });
    expect('pki' in named && named.pki.certs.find((c) => c.role === 'metric')!.sans.ips).toEqual(['10.9.9.9']);
  });

  it("a master keeps another CA under the same names in its own pki dir", () => {
    expect(otherCaOn({ name: 'metric', what: 'etcd metric CA', caCert: '/h/m3/pki/metric-ca.crt', caKey: '/h/m3/pki/metric-ca.key' }, '/h/m3/pki', '/h/m1/pki/')).toEqual({ name: 'metric', caCert: '/h/m1/pki/metric-ca.crt', caKey: '/h/m1/pki/metric-ca.key' });
    expect(otherCaOn({ name: 'metric', what: 'x', caCert: '/other/metric-ca.crt', caKey: '/etc/ssl/etcd/metric-ca.key' }, PKI, PKI).caCert).toBe('/other/metric-ca.crt');
  });
});

describe('a replace plans the metric pair with the metric CA', () => {
  const CA = `${'AB:'.repeat(31)}CD`;
  const METRIC = `${'EF:'.repeat(31)}01`;
  const learned = ocp4.pkiOnHost!(m3, { manifest, environment: `ETCD_IPV4_ADDRESS=10.0.0.3\nETCD_DNS_NAME=${DNS}`, files: [], peerURLs: [] });
  if (!('pki' in learned)) throw new Error(learned.problem);
  const certs = learned.pki.certs;
  const cas = (metricKey: boolean, sha: string | null = METRIC) => ({ metric: { caCert: `${PKI}/metric-ca.crt`, caKey: `${PKI}/metric-ca.key`, sha256: sha, hasKey: metricKey } });
  const peer = (name: string, caKey: boolean, metricKey: boolean, sha: string | null = METRIC): PeerLook => ({ name, hasConfig: true, hasCaCert: true, hasCaKey: caKey, caSha256: CA, roles: [], cas: cas(metricKey, sha) });
  const rebuilt = (peers: PeerLook[], metricCa: string | null = `no ${PKI}/metric-ca.crt`): ReplaceHosts => ({
    target: { name: 'm3', hasConfig: false, certs, pki: { ca: `no ${PKI}/ca.crt`, certs: { peer: 'no peer', server: 'no server', metric: 'no metric' }, caSha256: CA, cas: { metric: { problem: metricCa, sha256: METRIC } } } },
    peers,
  });

  it('picks the master that holds both CA keys, and hands the step the metric CA as judged', () => {
    const r = rebuiltChoice(cluster, m3, rebuilt([peer('m1', true, false), peer('m2', true, true)]), ['m1', 'm2']);
    if (!r.ok) throw new Error(r.reason);
    expect(r.choice.certs?.signer.name).toBe('m2');
    expect(r.choice.certs?.certs.map((c) => c.role)).toEqual(['peer', 'server', 'metric']);
    expect(r.choice.certs?.otherCaSha256).toEqual({ metric: METRIC });
    expect(r.choice.rationale).toContain('are issued from the etcd CA and the etcd metric CA (metric), signed on m2');
  });

  it('refuses before anything runs when the metric CA key is on no healthy master, saying what to put where', () => {
    const r = rebuiltChoice(cluster, m3, rebuilt([peer('m1', true, false), peer('m2', false, false)]), ['m1', 'm2']);
    expect(r.ok).toBe(false);
    const reason = !r.ok ? r.reason : '';
    expect(reason).toContain('no healthy master holds both the etcd CA key and the etcd metric CA\'s key to sign them (m1: no etcd metric CA key at /etc/ssl/etcd/metric-ca.key; m2: no etcd CA key, no etcd metric CA key at /etc/ssl/etcd/metric-ca.key)');
    expect(reason).toContain(`Put the etcd metric CA's key (metric-ca.key, the key of the CA in /etc/ssl/etcd/metric-ca.crt, sha256 ${METRIC.slice(0, 23)}…) at /etc/ssl/etcd/metric-ca.key on m1`);
    expect(reason).toContain('Nothing was changed.');
    // The etcd CA key on one master, the metric CA key on the other: no one master signs the set.
    const split = rebuiltChoice(cluster, m3, rebuilt([peer('m1', true, false), peer('m2', false, true)]), ['m1', 'm2']);
    expect(!split.ok && split.reason).toContain('Put the etcd metric CA\'s key');
  });

  it('leaves the metric pair out where no healthy master has the metric CA (the cluster has none), and keeps a valid one without asking for its key', () => {
    const none = rebuiltChoice(cluster, m3, { ...rebuilt([peer('m1', true, false, null)]), target: { ...rebuilt([]).target!, pki: { ca: `no ${PKI}/ca.crt`, certs: { peer: 'no peer', server: 'no server', metric: 'not checked' }, caSha256: CA } } }, ['m1']);
    if (!none.ok) throw new Error(none.reason);
    expect(none.choice.certs?.certs.map((c) => c.role)).toEqual(['peer', 'server']);
    expect(none.choice.certs?.otherCaSha256).toBeUndefined();
    const valid: ReplaceHosts = { target: { name: 'm3', hasConfig: true, certs, pki: { ca: null, certs: { peer: 'expired', server: null, metric: null }, caSha256: CA, cas: { metric: { problem: null, sha256: METRIC } } } }, peers: [peer('m1', true, false)] };
    const kept = rebuiltChoice(cluster, m3, valid, ['m1']);
    if (!kept.ok) throw new Error(kept.reason);
    expect(kept.choice.certs?.certs.map((c) => c.role)).toEqual(['peer', 'server']);
  });

  it('the step names both CAs in its plan text, each certificate with its own, and every signer where it keeps the metric CA', () => {
    const r = rebuiltChoice(cluster, m3, rebuilt([peer('m1', true, true), peer('m2', true, true)]), ['m1', 'm2']);
    if (!r.ok) throw new Error(r.reason);
    const c = r.choice.certs!;
    const others = (pkiDir: string) => [otherCaOn(certs.find((x) => x.signedBy)!.signedBy!, PKI, pkiDir)];
    const step = issueCertsStep.spec({ cluster, member: m3, signer: c.signer, runId: 'r-1', asideDir: '/var/lib/medic', caCert: `${PKI}/ca.crt`, signerCa: { cert: `${PKI}/ca.crt`, key: `${PKI}/ca.key`, others: others('/m1') }, fallbacks: c.fallbacks.map((m) => ({ member: m, cert: `${PKI}/ca.crt`, key: `${PKI}/ca.key`, others: others('/m2') })), certs: c.certs, why: c.why, caSha256: c.caSha256, otherCaSha256: c.otherCaSha256 });
    expect(step.operation).toContain(`with the etcd CA ${PKI}/ca.crt and its key ${PKI}/ca.key, which never leaves m1; the metric certificate's CSR signed there with the etcd metric CA /m1/metric-ca.crt and its key /m1/metric-ca.key`);
    expect(step.operation).toContain(`metric (CN=system:etcd-metric:${DNS}, O=system:etcd-metrics, DNS:${DNS},`);
    expect(step.operation).toContain(`IP:10.0.0.3; serverAuth+clientAuth; signed by the etcd metric CA) → ${PKI}/system:etcd-metric:${DNS}.crt`);
    expect(step.params.cas).toEqual([{ name: 'metric', what: 'etcd metric CA', caCert: `${PKI}/metric-ca.crt`, caAside: '/var/lib/medic/metric-ca.crt.r-1', caSha256: METRIC }]);
    expect(step.params.signerCas).toEqual([{ name: 'metric', caCert: '/m1/metric-ca.crt', caKey: '/m1/metric-ca.key' }]);
    expect(step.params.fallbackSigners?.[0]?.cas).toEqual([{ name: 'metric', caCert: '/m2/metric-ca.crt', caKey: '/m2/metric-ca.key' }]);
    expect(step.params.certs.map((x) => x.ca)).toEqual([undefined, undefined, 'metric']);
    expect(signerPlaces(step.params).map((s) => s.cas)).toEqual([step.params.signerCas, step.params.fallbackSigners![0]!.cas]);
    // A run planned before the metric pair (no cas, no ca on its certificates) still reads.
    const { cas: _c, signerCas: _s, ...before } = step.params;
    expect(issueCertsStep.params.safeParse({ ...before, certs: before.certs.filter((x) => !x.ca) }).success).toBe(true);
  });
});

describe('the step signs the metric pair with the metric CA and installs metric-ca.crt, with openssl as on the hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medic-metric-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const bash = (script: string) => {
    const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { encoding: 'utf8' });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
  };
  const pki = join(dir, 'pki');
  const aside = join(dir, 'aside');
  const staging = join(aside, 'certs-r-1');
  const want = (role: string, ca?: string): CertParams => ({ role, cert: join(pki, `${role}.crt`), key: join(pki, `${role}.key`), certAside: join(aside, `${role}.crt.r-1`), keyAside: join(aside, `${role}.key.r-1`), cn: `system:etcd-${role}:${DNS}`, o: `system:etcd-${role}s`, usages: ['serverAuth', 'clientAuth'], dns: [DNS], ips: ['10.0.0.3'], ...(ca ? { ca } : {}) });
  const certs = [want('peer'), want('metric', 'metric')];
  const place = { staging, caCert: join(pki, 'ca.crt'), caAside: join(aside, 'ca.crt.r-1'), cas: [{ name: 'metric', what: 'etcd metric CA', caCert: join(pki, 'metric-ca.crt'), caAside: join(aside, 'metric-ca.crt.r-1') }] };
  let etcdCa: { cert: string; key: string };
  let metricCa: { cert: string; key: string };
  const pems: Record<string, string> = {};
  const look = () => parsePkiLook(bash(pkiLookLines(pkiFiles(place, certs)).join('\n')).out);

  beforeAll(async () => {
    etcdCa = await makeCa(join(dir, 'etcd-ca'));
    metricCa = await makeCa(join(dir, 'metric-ca'), 'etcd-metric-signer');
    pems.etcd = readFileSync(etcdCa.cert, 'utf8');
    pems.metric = readFileSync(metricCa.cert, 'utf8');
    mkdirSync(pki, { recursive: true });
    mkdirSync(aside, { recursive: true });
    // What a rebuilt master had: an old metric-ca.crt of another signer, which is moved aside, never deleted.
    writeFileSync(join(pki, 'metric-ca.crt'), readFileSync(etcdCa.cert, 'utf8'));
  });

  it('signs each certificate with its own CA, installs metric-ca.crt (the old one aside), and a second run changes nothing', () => {
    let plan = certPlanOf(look(), pems.etcd!, certs, '10.0.0.3', new Date(), { metric: pems.metric! });
    expect(plan.casMissing).toEqual(['metric']);
    expect(plan.sign.map((c) => c.role)).toEqual(['peer', 'metric']);
    const made = bash(csrScript(staging, plan.sign));
    expect(made.code, made.out).toBe(0);
    const csrs = parsePkiLook(made.out);
    const signed = plan.sign.map((c, i) => {
      const ca = c.ca ? { caCert: metricCa.cert, caKey: metricCa.key, what: 'etcd metric CA' } : { caCert: etcdCa.cert, caKey: etcdCa.key };
      const out = bash(signScript({ ...ca, days: 30 }, c, pemBlock(csrs.get(`csr:${c.role}`), 'CERTIFICATE REQUEST')!, `0${i}`));
      expect(out.code, out.out).toBe(0);
      return { c, pem: pemBlock(parsePkiLook(out.out).get(`cert:${c.role}`), 'CERTIFICATE')! };
    });
    const installs = place.cas.map((o) => ({ ...o, pem: pems.metric! }));
    const first = bash(installScript(place, pems.etcd!, signed, installs));
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`installed the etcd metric CA certificate of the cluster at ${join(pki, 'metric-ca.crt')}`);
    expect(readFileSync(join(aside, 'metric-ca.crt.r-1'), 'utf8')).toBe(pems.etcd);
    expect(readFileSync(join(pki, 'metric-ca.crt'), 'utf8')).toBe(pems.metric);
    const metric = new X509Certificate(readFileSync(join(pki, 'metric.crt')));
    expect(metric.checkIssued(new X509Certificate(pems.metric!))).toBe(true);
    expect(metric.checkIssued(new X509Certificate(pems.etcd!))).toBe(false);
    expect(metric.subject).toBe(`O=system:etcd-metrics\nCN=system:etcd-metric:${DNS}`);

    plan = certPlanOf(look(), pems.etcd!, certs, '10.0.0.3', new Date(), { metric: pems.metric! });
    expect([plan.caInPlace, plan.casMissing, plan.inPlace, plan.sign.length, plan.install.length]).toEqual([true, [], ['peer', 'metric'], 0, 0]);
    // Run again (a worker that died after the install): nothing moved, the copy kept earlier untouched.
    const again = bash(installScript(place, pems.etcd!, signed, installs));
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain(`the etcd metric CA certificate is in place at ${join(pki, 'metric-ca.crt')}`);
    expect(readFileSync(join(aside, 'metric-ca.crt.r-1'), 'utf8')).toBe(pems.etcd);
  });

  it('judges a metric pair against the metric CA: one the etcd CA signed is not right', () => {
    const swapped = certPlanOf(look(), pems.etcd!, [want('peer'), { ...want('metric'), ca: undefined }], '10.0.0.3', new Date(), { metric: pems.metric! });
    expect(swapped.sign.map((c) => c.role)).toEqual(['metric']);
    expect(swapped.why[0]).toMatch(/^metric: .*metric\.crt is not signed by/);
    expect(existsSync(join(pki, 'metric.key'))).toBe(true);
  });

  it('says which CA a certificate is not signed by: one of the etcd CA where the metric pair belongs is "not signed by the cluster\'s etcd metric CA"', () => {
    const misplaced = { ...want('metric', 'metric'), cert: join(pki, 'peer.crt'), key: join(pki, 'peer.key') };
    const lookAt = (c: CertParams) => parsePkiLook(bash(pkiLookLines(pkiFiles(place, [c])).join('\n')).out);
    const plan = certPlanOf(lookAt(misplaced), pems.etcd!, [misplaced], '10.0.0.3', new Date(), { metric: pems.metric! }, place.cas);
    expect(plan.why[0]).toMatch(/^metric: .*peer\.crt is not signed by the cluster's etcd metric CA \(issuer /);
    const peer = certPlanOf(lookAt(want('peer')), pems.metric!, [want('peer')], '10.0.0.3', new Date(), {}, place.cas);
    expect(peer.why[0]).toMatch(/^peer: .*peer\.crt is not signed by the cluster's etcd CA \(issuer /);
  });

  it('a master signs only when it holds every CA of the step: the metric CA too, the planned one', () => {
    const s = { name: 'm1', caCert: '/pki/ca.crt', caKey: '/pki/ca.key', cas: [{ name: 'metric', caCert: '/pki/metric-ca.crt', caKey: '/pki/metric-ca.key' }] };
    const sha = (pem: string) => new X509Certificate(pem).fingerprint256;
    const need = [{ name: 'metric', what: 'etcd metric CA', caSha256: sha(pems.metric!) }];
    const out = (metricPem: string | null, key: string) => `medic-file ca\n${pems.etcd}\nmedic-end\nmedic-ca-key present\n${metricPem ? `medic-file ca:metric\n${metricPem}\nmedic-end` : 'medic-absent ca:metric'}\nmedic-ca-key:metric ${key}`;
    expect(signerProblem(out(pems.metric!, 'present'), s, sha(pems.etcd!), need)).toBeNull();
    expect(signerProblem(out(pems.metric!, 'absent'), s, sha(pems.etcd!), need)).toBe('no etcd metric CA key at /pki/metric-ca.key');
    expect(signerProblem(out(null, 'present'), s, sha(pems.etcd!), need)).toBe('no etcd metric CA certificate at /pki/metric-ca.crt');
    expect(signerProblem(out(pems.etcd!, 'present'), s, sha(pems.etcd!), need)).toMatch(/^its etcd metric CA at \/pki\/metric-ca\.crt is another one/);
    // A run planned before the metric pair asks for the etcd CA alone.
    expect(signerProblem(out(null, 'absent'), s, sha(pems.etcd!))).toBeNull();
  });
});

