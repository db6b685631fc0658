import { createPrivateKey, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoveryEnvironment, labEtcdDnsName } from '../../src/lab/openshift4.js';
import { run } from '../../src/lab/proc.js';
import { platformOf } from '../../src/platform/index.js';
import { proxyFlag } from '../../src/platform/metrics-proxy.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { waitForLeaderOtherThan } from '../support/rebuilt-master.js';
import { latest, planRun, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };
const ETCD = 'etcd-member.yaml';

/**
 * A replace onto a rebuilt OpenShift 4.1–4.3 master. Those masters name their
 * certificates by the member's etcd DNS name (`system:etcd-peer:<dns>.crt`,
 * what etcd-member.yaml's flags say with ${ETCD_DNS_NAME}), and keep no CA key:
 * the key is put on one master for the run, as the seed's temporary signer
 * stands for. The discovery output (/run/etcd/environment, written by the
 * pod's discovery init container) is what names the member. Their
 * etcd-metrics container serves with a third pair, system:etcd-metric:<dns>,
 * signed by another CA (the etcd metric signer, metric-ca.crt): it is issued
 * from that CA, whose key must be on the signing master too.
 */
describe('a replace onto a rebuilt openshift4 (4.1–4.3) master: certificates issued under the names its manifest gives', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('ocp4-rebuilt', 158, {
      roles: ROLES,
      lab: { platform: 'openshift4' },
      // The same masters, the inventory stating m3's etcd DNS name (what the discovery output says once its pod runs).
      editInventory: (inv) => {
        const c = inv.clusters[0];
        inv.clusters.push({ ...c, name: 'named', members: c.members.map((m: { name: string }) => (m.name === 'm3' ? { ...m, etcdDnsName: labEtcdDnsName('m3') } : m)) });
      },
    });
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/rebuilt/k${i}`, `v${i}`]);
  });
  afterAll(async () => {
    await t?.stop();
  });

  const voters = async () => (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort();
  const environmentOf = (name: string) => join(t.lab.host(name).root, 'run/etcd/environment');

  it('rebuilt without its discovery output (its etcd DNS name unknown): refused before anything runs, naming what to put where', async () => {
    const m3 = t.lab.host('m3');
    const m1 = t.lab.host('m1');
    // The etcd CA key, which a 4.1–4.3 master does not keep, put on m1 for the signing.
    copyFileSync(join(dirname(t.lab.tls.ca), 'ca.key'), join(m1.pkiDir, 'ca.key'));
    // The fault: m3's machine is reinstalled: data dir, pki dir, manifest and /run gone.
    await t.lab.wipeMember('m3');
    for (const f of [join(m3.manifestsDir, ETCD), join(m3.parkedDir, ETCD), dirname(environmentOf('m3'))]) rmSync(f, { recursive: true, force: true });
    await waitForLeaderOtherThan(t.lab, 'm3');

    const { msg } = await planRun(t, 'replace m3', /refused|^Replace m3 in lab/);
    const text = textOf(msg);
    expect(text).not.toMatch(/^Replace m3 in lab/);
    expect(text).toContain(`m3's etcd DNS name (ETCD_DNS_NAME, which its manifest's certificate paths are named by) could not be learned: no etcdDnsName for it in the inventory, no ETCD_DNS_NAME in ./run/etcd/environment on its host, no DNS name in its peer URL (${m3.peerUrl})`);
    expect(text).toContain('Set etcdDnsName for m3 in the inventory (its etcd-N DNS name)');
    expect(text).toContain('Nothing was changed.');
    // Nothing was written on m3, and m3 is still in the member list.
    expect(existsSync(m3.pkiDir) ? readdirSync(m3.pkiDir) : []).toEqual([]);
    expect((await t.lab.memberList()).map((m) => m.name)).toContain('m3');
  });

  it('with its etcd DNS name but the metric CA key on no master: refused before anything runs, naming the key and where to put it', async () => {
    const m3 = t.lab.host('m3');
    const m1 = t.lab.host('m1');
    // The discovery init container's output, which the pod's script sources when it starts.
    mkdirSync(dirname(environmentOf('m3')), { recursive: true });
    writeFileSync(environmentOf('m3'), discoveryEnvironment(m3.ip, 'm3'));
    // m1 has the etcd CA key (put there by the first test), and no master has the metric signer's.
    expect(existsSync(join(m1.pkiDir, 'ca.key'))).toBe(true);

    const { msg } = await planRun(t, 'replace m3 named', /refused|^Replace m3 in named/);
    const text = textOf(msg);
    expect(text).not.toMatch(/^Replace m3 in named/);
    expect(text).toContain('no healthy master holds both the etcd CA key and the etcd metric CA\'s key to sign them');
    expect(text).toContain(`m1: no etcd metric CA key at ${m1.pkiDir}/metric-ca.key`);
    expect(text).toContain(`Put the etcd metric CA's key (metric-ca.key, the key of the CA in ${m1.pkiDir}/metric-ca.crt, sha256 `);
    expect(text).toMatch(/sha256 [0-9A-F:]{23}…\) at \S+\/metric-ca\.key on m1/);
    expect(text).toContain(`) at ${m1.pkiDir}/metric-ca.key on m1`);
    expect(text).toContain('Nothing was changed.');
    expect(existsSync(m3.pkiDir) ? readdirSync(m3.pkiDir) : []).toEqual([]);
    expect((await t.lab.memberList()).map((m) => m.name)).toContain('m3');
  });

  it('with its etcd DNS name in the inventory and both CA keys on m1: its pairs issued as system:etcd-peer:<dns>.crt/.key, system:etcd-server:… and system:etcd-metric:… (by the metric CA), signed on m1, its manifest built from a peer\'s, etcd started on them', async () => {
    const m3 = t.lab.host('m3');
    const m1 = t.lab.host('m1');
    const dns = labEtcdDnsName('m3');
    const metricCa = t.lab.metricCa!;
    // The metric signer's key, which a 4.1–4.3 master does not keep either, put on m1 beside the etcd CA's.
    copyFileSync(metricCa.key, join(m1.pkiDir, 'metric-ca.key'));
    // A leftover metric-ca.crt of another signer on m3: moved aside by the run, never deleted.
    mkdirSync(m3.pkiDir, { recursive: true });
    copyFileSync(t.lab.tls.ca, join(m3.pkiDir, 'metric-ca.crt'));
    const peerCrt = join(m3.pkiDir, `system:etcd-peer:${dns}.crt`);
    const serverCrt = join(m3.pkiDir, `system:etcd-server:${dns}.crt`);
    const metricCrt = join(m3.pkiDir, `system:etcd-metric:${dns}.crt`);

    const { ts } = await planRun(t, 'replace m3 named', /refused|^Replace m3 in named/);
    const planned = textOf(latest(t.slack, ts));
    expect(planned, planned).toMatch(/^Replace m3 in named/);
    expect(planned).toMatch(/Issue m3's etcd certificates from the cluster's CA/);
    expect(planned).toContain(`with the etcd CA ${m1.pkiDir}/ca.crt and its key ${m1.pkiDir}/ca.key, which never leaves m1`);
    expect(planned).toContain(`peer (CN=system:etcd-peer:${dns}, O=system:etcd-peers, DNS:${dns},DNS:m3,DNS:localhost,IP:${m3.ip},IP:127.0.0.1,IP:::1; serverAuth+clientAuth) → ${peerCrt}`);
    expect(planned).toContain(`→ ${serverCrt}`);
    expect(planned).not.toContain(`${m3.pkiDir}/peer.crt`);
    // Both CAs named: the metric pair's CSR signed with the metric CA and its key on m1.
    expect(planned).toContain(`the metric certificate's CSR signed there with the etcd metric CA ${m1.pkiDir}/metric-ca.crt and its key ${m1.pkiDir}/metric-ca.key, which never leaves m1 either`);
    expect(planned).toContain(`metric (CN=system:etcd-metric:${dns}, O=system:etcd-metrics, DNS:${dns},DNS:m3,DNS:localhost,IP:${m3.ip}; serverAuth+clientAuth; signed by the etcd metric CA) → ${metricCrt}`);
    expect(planned).toContain(`put at ${m3.pkiDir}/metric-ca.crt as well`);

    // Approve each gate as it appears (issue certs, member remove, stop), until the run ends.
    await approveUntilEnded(t, ts, 'UBOB', 120_000);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(textOf(latest(t.slack, ts)).split('\n')[0], thread).toBe('Replace m3 in named: DONE');

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    const { stdout } = await t.lab.etcdctl(['get', '/rebuilt/', '--prefix', '--keys-only', '--consistency=s'], [m3.clientUrl]);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);

    // Its pairs under the real names, signed by the cluster's CA (openssl says so), for its etcd DNS name and address.
    for (const [role, cert] of [['peer', peerCrt], ['server', serverCrt]] as const) {
      expect((await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, cert])).stdout.trim()).toBe(`${cert}: OK`);
      const x = new X509Certificate(readFileSync(cert));
      expect(x.subject).toBe(`O=system:etcd-${role}s\nCN=system:etcd-${role}:${dns}`);
      expect(x.subjectAltName).toContain(`DNS:${dns}`);
      expect(x.subjectAltName).toContain(`IP Address:${m3.ip}`);
      expect(existsSync(cert.replace(/\.crt$/, '.key'))).toBe(true);
    }
    // The metric pair: signed by the metric signer (not the etcd CA), CN/O as the signer gives them, for its DNS name and address.
    expect((await run('openssl', ['verify', '-CAfile', metricCa.cert, metricCrt])).stdout.trim()).toBe(`${metricCrt}: OK`);
    expect((await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, metricCrt], { allowFail: true })).code).not.toBe(0);
    const metric = new X509Certificate(readFileSync(metricCrt));
    expect(metric.subject).toBe(`O=system:etcd-metrics\nCN=system:etcd-metric:${dns}`);
    expect(metric.subjectAltName).toContain(`DNS:${dns}`);
    expect(metric.subjectAltName).toContain(`IP Address:${m3.ip}`);
    expect(metric.checkPrivateKey(createPrivateKey(readFileSync(metricCrt.replace(/\.crt$/, '.key'))))).toBe(true);
    // The metric signer's certificate installed (the leftover moved aside); its key stayed on m1.
    expect(readFileSync(join(m3.pkiDir, 'metric-ca.crt'), 'utf8')).toBe(readFileSync(metricCa.cert, 'utf8'));
    const asideDir = platformOf(t.config.inventory.clusters[0]!).paths(t.config.inventory.clusters[0]!.members.find((m) => m.name === 'm3')!).asideDir;
    const kept = readdirSync(asideDir).filter((f) => f.startsWith('metric-ca.crt.'));
    expect(kept).toHaveLength(1);
    expect(readFileSync(join(asideDir, kept[0]!), 'utf8')).toBe(readFileSync(t.lab.tls.ca, 'utf8'));
    expect(readdirSync(m3.pkiDir).sort()).toEqual(
      ['ca.crt', 'metric-ca.crt', `system:etcd-metric:${dns}.crt`, `system:etcd-metric:${dns}.key`, `system:etcd-peer:${dns}.crt`, `system:etcd-peer:${dns}.key`, `system:etcd-server:${dns}.crt`, `system:etcd-server:${dns}.key`].sort(),
    );

    // The manifest names them as the peer's does (by ${ETCD_DNS_NAME}), and etcd runs with them, the name filled in by the script.
    const manifest = readFileSync(join(m3.manifestsDir, ETCD), 'utf8');
    const platform = platformOf(t.config.inventory.clusters[0]!);
    expect(platform.flag(manifest, 'peer-cert-file')).toBe(`${m3.pkiDir}/system:etcd-peer:\${ETCD_DNS_NAME}.crt`);
    expect(platform.flag(manifest, 'name')).toBe('m3');
    const pid = m3.supervisor.pid();
    expect(pid).not.toBeNull();
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(args).toContain(`--peer-cert-file=${peerCrt}`);
    expect(args).toContain(`--cert-file=${serverCrt}`);
    // The CA keys stayed on m1 only.
    expect(existsSync(join(m3.pkiDir, 'ca.key'))).toBe(false);
    expect(existsSync(join(m3.pkiDir, 'metric-ca.key'))).toBe(false);
    // The etcd-metrics container names the pair in m3's pki dir, as the real one does.
    expect(proxyFlag(manifest, 'cert-file')).toBe(`${m3.pkiDir}/system:etcd-metric:\${ETCD_DNS_NAME}.crt`);
    expect(proxyFlag(manifest, 'trusted-ca-file')).toBe(`${m3.pkiDir}/metric-ca.crt`);
  });
});
