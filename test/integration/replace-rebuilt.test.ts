import { X509Certificate, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { makeCa, makeCert } from '../../src/lab/certs.js';
import { run } from '../../src/lab/proc.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { startWorker, type MainProcess } from '../support/main-process.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { waitForLeaderOtherThan } from '../support/rebuilt-master.js';
import { latest, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };

/** Every file below `dir`, recursively (sockets and the like left out). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

describe('a replace onto a rebuilt master (kubeadm): certificates issued from the CA, manifest from a peer', () => {
  let t: MedicLab;
  const workers: MainProcess[] = [];

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes so that one can die mid-step.
    t = await startMedicLab('rebuilt', 112, { roles: ROLES, botOnly: true });
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/rebuilt/k${i}`, `v${i}`]);
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await t?.stop();
  });

  const worker = (extra: Record<string, string> = {}) => {
    // A short job lock: a dead worker's job is taken over after about 2 s instead of 30.
    const w = startWorker({ ...t.env, WORKER_LOCK_MS: '2000', LOG_LEVEL: 'warn', ...extra });
    workers.push(w);
    return w;
  };

  it('plans cert issuing and a manifest from a peer, survives a worker killed mid-signing, and m3 rejoins with one valid certificate per role', async () => {
    const m3 = t.lab.host('m3');
    // The fault: m3's machine is reinstalled (data dir, manifest and pki gone) and comes back with a
    // self-signed peer certificate of its own, from a CA the cluster does not know.
    const members0 = await t.lab.memberList();
    const m3Id = members0.find((m) => m.name === 'm3')!.id;
    // m3 leads when its machine goes (the worst case: the leader and its CA key copy gone at once).
    const leader0 = await t.lab.leaderHex();
    if (leader0 !== m3Id) await t.lab.etcdctl(['move-leader', m3Id], [members0.find((m) => m.id === leader0)!.client]);
    await t.lab.wipeMember('m3');
    // The others elect a new leader before the replace is asked for.
    await waitForLeaderOtherThan(t.lab, 'm3');
    const stranger = await makeCa(join(m3.root, 'tmp', 'stranger'), 'stranger-ca');
    const foreign = await makeCert(join(m3.root, 'tmp', 'stranger'), 'm3-peer', stranger, [m3.ip, '127.0.0.1']);
    mkdirSync(m3.pkiDir, { recursive: true });
    await run('cp', [foreign.cert, join(m3.pkiDir, 'peer.crt')]);
    await run('cp', [foreign.key, join(m3.pkiDir, 'peer.key')]);
    const foreignPem = readFileSync(foreign.cert, 'utf8');
    // The lab's etcd CA key: kubeadm keeps a copy on every master (m3's went with its disk).
    const caKeyBefore = readFileSync(join(dirname(t.lab.tls.ca), 'ca.key'), 'utf8');

    // The fault: this worker kills itself (SIGKILL) once the first certificate is signed, before it reaches m3.
    const doomed = worker({ MEDIC_FAULT_KILL_AT: 'mid-cert' });
    let rescuer: MainProcess | null = null;
    let ending = false;
    void doomed.exit.then(() => {
      if (!ending) rescuer = worker();
    });

    try {
      const since = t.slack.lastSeq;
      await t.command('replace m3', { user: 'UALICE' });
      const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
      const ts = plan.ts!;
      const planned = textOf(latest(t.slack, ts));
      // The leader at planning (the snapshot's source) is asked first to sign and to lend its manifest.
      const signer = t.lab.host(/maintenance\.snapshot\(\) from (m\d) /.exec(planned)![1]!);
      expect(signer.name).not.toBe('m3');
      // Exactly what will happen, and where: keys on m3, signing on the leader with the CA that stays there, its manifest adapted.
      expect(planned).toMatch(/Issue m3's etcd certificates from the cluster's CA/);
      expect(planned).toContain(`On root@${m3.ip}:2222: openssl genpkey (RSA 2048)`);
      expect(planned).toContain(`signed on root@${signer.ip}:2222 with the etcd CA ${signer.pkiDir}/ca.crt and its key ${signer.pkiDir}/ca.key, which never leaves ${signer.name}`);
      expect(planned).toContain(`DNS:m3,DNS:localhost,IP:${m3.ip},IP:127.0.0.1,IP:::1`);
      expect(planned).toContain(`from ${signer.name}'s manifest (${signer.manifestsDir}/etcd.yaml on root@${signer.ip}:2222) adapted to ${m3.ip}`);
      // The certificates come before the membership changes; the member is removed and added after.
      expect(planned.indexOf('Issue m3')).toBeLessThan(planned.indexOf('Remove m3 from the member list'));
      const rationale = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.thread_ts === ts && textOf(r).includes('looks rebuilt'), 20_000);
      expect(textOf(rationale)).toMatch(/no manifest at .*etcd\.yaml; .*peer: .*not signed by the cluster's etcd CA/);

      // Approve each gate as it appears (issue certs, member remove, stop), until the run ends.
      await approveUntilEnded(t, ts, 'UBOB', 90_000);
      const message = textOf(latest(t.slack, ts));
      const thread = threadOf(t.slack, ts).join('\n');
      expect(message.split('\n')[0], thread).toBe('Replace m3 in lab: DONE');
      expect((await doomed.exit).signal).toBe('SIGKILL');
      expect(rescuer).not.toBeNull();
      expect(thread).toMatch(/Step 2 \(Issue m3's etcd certificates[^)]*\) was interrupted; resuming/);
      // The key the first worker made is the one signed again: it was not made anew under a certificate for the old one.
      expect(thread).toContain('the key for peer made earlier by this run is kept');
      const runId = /r-[0-9a-f]{8}/.exec(thread)![0];

      // m3 is a started voter again, with every key.
      const members = await t.lab.memberList();
      expect(members.filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
      const { stdout } = await t.lab.etcdctl(['get', '/rebuilt/', '--prefix', '--keys-only', '--consistency=s'], [m3.clientUrl]);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);

      // Its certificates: signed by the cluster's CA (openssl says so), for its names, each the pair of its key.
      for (const role of ['peer', 'server']) {
        const cert = join(m3.pkiDir, `${role}.crt`);
        const verified = await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, cert]);
        expect(verified.stdout.trim()).toBe(`${cert}: OK`);
        const san = await run('openssl', ['x509', '-in', cert, '-noout', '-ext', 'subjectAltName']);
        expect(san.stdout).toContain(`DNS:m3, DNS:localhost, IP Address:${m3.ip}, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`);
        const subject = await run('openssl', ['x509', '-in', cert, '-noout', '-subject']);
        expect(subject.stdout.trim()).toBe('subject=CN = m3');
        const pub = (await run('openssl', ['pkey', '-in', join(m3.pkiDir, `${role}.key`), '-pubout'])).stdout;
        expect(createPublicKey(pub).export({ type: 'spki', format: 'pem' })).toBe(new X509Certificate(readFileSync(cert)).publicKey.export({ type: 'spki', format: 'pem' }));
        expect(statSync(join(m3.pkiDir, `${role}.key`)).mode & 0o077).toBe(0);
      }
      expect(readFileSync(join(m3.pkiDir, 'ca.crt'), 'utf8')).toBe(readFileSync(t.lab.tls.ca, 'utf8'));

      // Exactly one certificate per role on the whole host (the run's staging copy is the same one), and the
      // stranger's peer certificate and key kept aside under the run's name, not deleted.
      const certsOnHost = new Map<string, Set<string>>();
      // (The lab's own tmp dir, where it made m3's first certificates and the stranger's, is not part of the host.)
      for (const f of filesUnder(m3.root).filter((f) => !f.startsWith(join(m3.root, 'tmp/')))) {
        const text = readFileSync(f, 'latin1');
        const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(text)?.[0];
        if (!pem) continue;
        const c = new X509Certificate(pem);
        if (c.subject !== 'CN=m3' || !c.checkIssued(new X509Certificate(readFileSync(t.lab.tls.ca)))) continue;
        const role = f.endsWith('peer.crt') ? 'peer' : f.endsWith('server.crt') ? 'server' : f;
        certsOnHost.set(role, new Set([...(certsOnHost.get(role) ?? []), c.fingerprint256]));
      }
      expect([...certsOnHost.keys()].sort()).toEqual(['peer', 'server']);
      for (const fps of certsOnHost.values()) expect(fps.size).toBe(1);
      const aside = join(dirname(m3.manifestsDir), 'etcd-medic-aside');
      expect(readFileSync(join(aside, `peer.crt.${runId}`), 'utf8')).toBe(foreignPem);
      expect(existsSync(join(aside, `peer.key.${runId}`))).toBe(true);

      // The CA key never reached m3: no file there holds it (nor its base64 body), and the signer still has it as it was.
      const caKeyB64 = caKeyBefore.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      const caKeyDer = Buffer.from(caKeyB64, 'base64');
      const firstLine = caKeyBefore.split('\n')[1]!;
      for (const f of filesUnder(m3.root)) {
        const bytes = readFileSync(f);
        expect(bytes.includes(caKeyDer) || bytes.includes(firstLine), `${f} holds the CA key`).toBe(false);
      }
      // (Only the stranger's CA, which the lab made in its tmp dir, has a key file there.)
      expect(filesUnder(m3.root).filter((f) => f.endsWith('ca.key') && !f.startsWith(join(m3.root, 'tmp/')))).toEqual([]);
      expect(readFileSync(join(signer.pkiDir, 'ca.key'), 'utf8')).toBe(caKeyBefore);

      // m3's manifest is the signer's made into m3's: its own name, address, data dir and certificates, joining an existing cluster.
      const manifest = readFileSync(join(m3.manifestsDir, 'etcd.yaml'), 'utf8');
      const command: string[] = parseYaml(manifest).spec.containers[0].command;
      expect(command).toEqual(
        expect.arrayContaining([
          '--name=m3',
          `--data-dir=${m3.dataDir}`,
          `--advertise-client-urls=${m3.clientUrl}`,
          `--initial-advertise-peer-urls=${m3.peerUrl}`,
          `--listen-peer-urls=${m3.peerUrl}`,
          `--peer-cert-file=${m3.pkiDir}/peer.crt`,
          '--initial-cluster-state=existing',
        ]),
      );
      // The signer is named only where it must be: in the initial cluster.
      expect(manifest.replace(/--initial-cluster=\S+/, '')).not.toContain(signer.ip);
      expect(manifest).not.toContain(signer.root);
    } finally {
      ending = true;
      for (const w of [doomed, rescuer as MainProcess | null]) if (w && w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all([doomed.exit, (rescuer as MainProcess | null)?.exit]);
    }
  });
});
