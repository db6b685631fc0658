import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoveryEnvironment, labEtcdDnsName } from '../../src/lab/openshift4.js';
import { run, waitFor } from '../../src/lab/proc.js';
import { platformOf } from '../../src/platform/index.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, latest, planRun, textOf, threadOf, waitForGate } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };
const ETCD = 'etcd-member.yaml';

/**
 * A replace onto a rebuilt OpenShift 4.1–4.3 master. Those masters name their
 * certificates by the member's etcd DNS name (`system:etcd-peer:<dns>.crt`,
 * what etcd-member.yaml's flags say with ${ETCD_DNS_NAME}), and keep no CA key:
 * the key is put on one master for the run, as the seed's temporary signer
 * stands for. The discovery output (/run/etcd/environment, written by the
 * pod's discovery init container) is what names the member.
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
    const m3Id = (await t.lab.memberList()).find((m) => m.name === 'm3')!.id;
    // The fault: m3's machine is reinstalled: data dir, pki dir, manifest and /run gone.
    await t.lab.wipeMember('m3');
    for (const f of [join(m3.manifestsDir, ETCD), join(m3.parkedDir, ETCD), dirname(environmentOf('m3'))]) rmSync(f, { recursive: true, force: true });
    await waitFor('a leader other than m3', async () => ![null, '0', m3Id].includes(await t.lab.leaderHex().catch(() => null)), 20_000, 200);

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

  it('with its etcd DNS name in the inventory: its pairs issued as system:etcd-peer:<dns>.crt/.key and system:etcd-server:…, signed on m1, its manifest built from a peer\'s, etcd started on them', async () => {
    const m3 = t.lab.host('m3');
    const m1 = t.lab.host('m1');
    const dns = labEtcdDnsName('m3');
    // The discovery init container's output, which the pod's script sources when it starts.
    mkdirSync(dirname(environmentOf('m3')), { recursive: true });
    writeFileSync(environmentOf('m3'), discoveryEnvironment(m3.ip, 'm3'));
    const peerCrt = join(m3.pkiDir, `system:etcd-peer:${dns}.crt`);
    const serverCrt = join(m3.pkiDir, `system:etcd-server:${dns}.crt`);

    const { ts } = await planRun(t, 'replace m3 named', /refused|^Replace m3 in named/);
    const planned = textOf(latest(t.slack, ts));
    expect(planned, planned).toMatch(/^Replace m3 in named/);
    expect(planned).toMatch(/Issue m3's etcd certificates from the cluster's CA/);
    expect(planned).toContain(`with the etcd CA ${m1.pkiDir}/ca.crt and its key ${m1.pkiDir}/ca.key, which never leaves m1`);
    expect(planned).toContain(`peer (CN=system:etcd-peer:${dns}, O=system:etcd-peers, DNS:${dns},DNS:m3,DNS:localhost,IP:${m3.ip},IP:127.0.0.1,IP:::1; serverAuth+clientAuth) → ${peerCrt}`);
    expect(planned).toContain(`→ ${serverCrt}`);
    expect(planned).not.toContain(`${m3.pkiDir}/peer.crt`);

    // Approve each gate as it appears (issue certs, member remove, stop), until the run ends.
    const approved = new Set<number>();
    const deadline = Date.now() + 120_000;
    for (;;) {
      const header = textOf(latest(t.slack, ts)).split('\n')[0]!;
      if (/: (DONE|FAILED|CANCELLED|REJECTED)/.test(header)) break;
      for (const step of [1, 2, 3, 4]) {
        if (approved.has(step)) continue;
        const g = await waitForGate(t.slack, ts, step, 1, 200).catch(() => null);
        if (!g) continue;
        approved.add(step);
        await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: g.blockId, value: g.approve })).responseUrl);
      }
      if (Date.now() > deadline) throw new Error(`run not done in time:\n${textOf(latest(t.slack, ts))}\n${threadOf(t.slack, ts).join('\n')}`);
      await t.slack.waitFor(() => true, 500, t.slack.lastSeq).catch(() => undefined);
    }
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
    expect(readdirSync(m3.pkiDir).sort()).toEqual(['ca.crt', `system:etcd-peer:${dns}.crt`, `system:etcd-peer:${dns}.key`, `system:etcd-server:${dns}.crt`, `system:etcd-server:${dns}.key`]);

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
    // The CA key stayed on m1 only.
    expect(existsSync(join(m3.pkiDir, 'ca.key'))).toBe(false);
  });
});
