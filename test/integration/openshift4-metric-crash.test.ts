import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoveryEnvironment, labEtcdDnsName } from '../../src/lab/openshift4.js';
import { run } from '../../src/lab/proc.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { startWorker, type MainProcess } from '../support/main-process.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { waitForLeaderOtherThan } from '../support/rebuilt-master.js';
import { latest, planRun, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };
const ETCD = 'etcd-member.yaml';

/** Every file below `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

/**
 * The certificates step of a replace onto a rebuilt OpenShift 4.1–4.3 master,
 * its worker killed once every pair is signed (the metric pair by the metric
 * CA) and before anything is written on the master: the next worker signs
 * again for the keys already made there, installs each pair and metric-ca.crt
 * once, and keeps the one copy of what was there.
 */
describe('a replace onto a rebuilt openshift4 (4.1–4.3) master whose worker dies with its three pairs signed', () => {
  let t: MedicLab;
  const workers: MainProcess[] = [];

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes so that one can die mid-step.
    t = await startMedicLab('ocp4-metric-crash', 163, {
      roles: ROLES,
      botOnly: true,
      lab: { platform: 'openshift4' },
      editInventory: (inv) => {
        inv.clusters[0].members = inv.clusters[0].members.map((m: { name: string }) => (m.name === 'm3' ? { ...m, etcdDnsName: labEtcdDnsName('m3') } : m));
      },
    });
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/crash/k${i}`, `v${i}`]);
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

  it('the next worker installs one certificate per pair and metric-ca.crt once, for the keys made before the crash', async () => {
    const m1 = t.lab.host('m1');
    const m3 = t.lab.host('m3');
    const dns = labEtcdDnsName('m3');
    const metricCa = t.lab.metricCa!;
    // Both CA keys, which 4.1–4.3 masters do not keep, put on m1 for the run.
    copyFileSync(join(dirname(t.lab.tls.ca), 'ca.key'), join(m1.pkiDir, 'ca.key'));
    copyFileSync(metricCa.key, join(m1.pkiDir, 'metric-ca.key'));
    // The fault: m3's machine is reinstalled (data dir, pki dir, manifest gone); its discovery output is back, and so is
    // a metric-ca.crt of another signer, left by whatever reinstalled it.
    await t.lab.wipeMember('m3');
    for (const f of [join(m3.manifestsDir, ETCD), join(m3.parkedDir, ETCD)]) rmSync(f, { force: true });
    mkdirSync(join(m3.root, 'run/etcd'), { recursive: true });
    writeFileSync(join(m3.root, 'run/etcd/environment'), discoveryEnvironment(m3.ip, 'm3'));
    mkdirSync(m3.pkiDir, { recursive: true });
    copyFileSync(t.lab.tls.ca, join(m3.pkiDir, 'metric-ca.crt'));
    await waitForLeaderOtherThan(t.lab, 'm3');

    // The fault: this worker kills itself (SIGKILL) once every certificate is signed, before any reaches m3.
    const doomed = worker({ MEDIC_FAULT_KILL_AT: 'certs-signed' });
    let rescuer: MainProcess | null = null;
    let ending = false;
    void doomed.exit.then(() => {
      if (!ending) rescuer = worker();
    });
    try {
      const { ts } = await planRun(t, 'replace m3', /refused|^Replace m3 in lab/);
      const planned = textOf(latest(t.slack, ts));
      expect(planned, planned).toMatch(/^Replace m3 in lab/);
      expect(planned).toContain(`signed by the etcd metric CA) → ${m3.pkiDir}/system:etcd-metric:${dns}.crt`);

      await approveUntilEnded(t, ts, 'UBOB', 120_000);
      const thread = threadOf(t.slack, ts).join('\n');
      expect(textOf(latest(t.slack, ts)).split('\n')[0], thread).toBe('Replace m3 in lab: DONE');
      expect((await doomed.exit).signal).toBe('SIGKILL');
      expect(rescuer).not.toBeNull();
      expect(thread).toMatch(/Step 2 \(Issue m3's etcd certificates[^)]*\) was interrupted; resuming/);
      // The keys the first worker made on m3 are the ones signed again, the metric one included.
      for (const role of ['peer', 'server', 'metric']) expect(thread).toContain(`the key for ${role} made earlier by this run is kept`);
      expect(thread).toContain('metric: signed on m1 by the etcd metric CA');
      const runId = /r-[0-9a-f]{8}/.exec(thread)![0];

      expect((await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
      const { stdout } = await t.lab.etcdctl(['get', '/crash/', '--prefix', '--keys-only', '--consistency=s'], [m3.clientUrl]);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);

      // Each pair signed by its own CA (openssl says so); the metric one not by the etcd CA.
      const metricCrt = join(m3.pkiDir, `system:etcd-metric:${dns}.crt`);
      expect((await run('openssl', ['verify', '-CAfile', metricCa.cert, metricCrt])).stdout.trim()).toBe(`${metricCrt}: OK`);
      expect((await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, metricCrt], { allowFail: true })).code).not.toBe(0);
      for (const role of ['peer', 'server']) {
        const crt = join(m3.pkiDir, `system:etcd-${role}:${dns}.crt`);
        expect((await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, crt])).stdout.trim()).toBe(`${crt}: OK`);
      }
      expect(readFileSync(join(m3.pkiDir, 'metric-ca.crt'), 'utf8')).toBe(readFileSync(metricCa.cert, 'utf8'));

      // One certificate per pair on the whole host (the staging copy is the same one), and the leftover metric-ca.crt kept once, aside.
      const bySubject = new Map<string, Set<string>>();
      for (const f of filesUnder(m3.root).filter((f) => !f.startsWith(join(m3.root, 'tmp/')) && f.endsWith('.crt'))) {
        const c = new X509Certificate(readFileSync(f));
        if (!c.subject.includes(`:${dns}`)) continue;
        bySubject.set(c.subject, new Set([...(bySubject.get(c.subject) ?? []), c.fingerprint256]));
      }
      expect([...bySubject.keys()].sort()).toEqual([`O=system:etcd-metrics\nCN=system:etcd-metric:${dns}`, `O=system:etcd-peers\nCN=system:etcd-peer:${dns}`, `O=system:etcd-servers\nCN=system:etcd-server:${dns}`]);
      for (const fps of bySubject.values()) expect(fps.size).toBe(1);
      const aside = join(dirname(m3.manifestsDir), 'etcd-medic-aside');
      expect(readdirSync(aside).filter((f) => f.startsWith('metric-ca.crt.'))).toEqual([`metric-ca.crt.${runId}`]);
      expect(readFileSync(join(aside, `metric-ca.crt.${runId}`), 'utf8')).toBe(readFileSync(t.lab.tls.ca, 'utf8'));
      // Neither CA key reached m3.
      expect(filesUnder(m3.root).filter((f) => /(^|\/)(metric-)?ca\.key$/.test(f))).toEqual([]);
    } finally {
      ending = true;
      for (const w of [doomed, rescuer as MainProcess | null]) if (w && w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all([doomed.exit, (rescuer as MainProcess | null)?.exit]);
    }
  });
});
