import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { readServingCert } from '../../src/certs/expiry.js';
import { certTargets, readTargets, urgentReadings, type CertTarget, type TargetReading } from '../../src/certs/targets.js';
import { parseInventory } from '../../src/config/load.js';
import type { ClusterConfig } from '../../src/config/schema.js';
import { makeCert, type Validity } from '../../src/lab/certs.js';
import { startLab, type Lab } from '../../src/lab/harness.js';
import { run } from '../../src/lab/proc.js';
import { freePort } from '../../src/lab/redis.js';

const SUBNET = 87;
const DAY = 86_400_000;

/** What openssl itself reads from a certificate file: the reference the handshake readings are checked against. */
async function opensslDates(file: string): Promise<{ notAfter: Date; subject: string }> {
  const { stdout } = await run('openssl', ['x509', '-in', file, '-noout', '-enddate', '-subject', '-nameopt', 'RFC2253']);
  return { notAfter: new Date(/notAfter=(.*)/.exec(stdout)![1]!), subject: /subject=(.*)/.exec(stdout)![1]!.trim() };
}

/** A TLS listener serving one certificate; it counts connections and any application data a client sends. */
interface Listener {
  server: Server;
  host: string;
  port: number;
  bytesReceived: number;
  connections: number;
}

async function serve(host: string, cert: { cert: string; key: string }): Promise<Listener> {
  const l: Listener = { server: createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }), host, port: await freePort(host), bytesReceived: 0, connections: 0 };
  l.server.on('connection', () => (l.connections += 1));
  l.server.on('secureConnection', (s) => {
    s.on('data', (d: Buffer) => (l.bytesReceived += d.length));
    s.on('error', () => undefined);
  });
  l.server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => l.server.listen(l.port, host, r));
  return l;
}

const ok = (r: TargetReading | undefined) => {
  if (!r?.ok) throw new Error(`expected a reading of ${r?.target.label}: ${r && !r.ok ? r.error : 'missing'}`);
  return r;
};

describe('certificate expiry read from real TLS handshakes', () => {
  let lab: Lab;
  let cluster: ClusterConfig;
  const listeners: Listener[] = [];
  const issued: Record<string, { cert: string; key: string; validity: Validity }> = {};

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'cert-expiry'), subnet: SUBNET });
    // Without Kubernetes access here: this test is about etcd's certificates and the bot's own.
    cluster = { ...parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath).clusters[0]!, kubeconfig: undefined };
    // Certificates from the lab's own CA, with lives chosen to land in each class.
    const ca = { cert: lab.tls.ca, key: join(lab.opts.root, 'ca', 'ca.key') };
    const now = Date.now();
    const lives: Record<string, Validity> = {
      expired: { notBefore: new Date(now - 40 * DAY), notAfter: new Date(now - 2 * DAY - 3_600_000) },
      soon: { notBefore: new Date(now - DAY), notAfter: new Date(now + 3 * DAY + 3_600_000) },
      long: { notBefore: new Date(now - DAY), notAfter: new Date(now + 400 * DAY + 3_600_000) },
    };
    let i = 20;
    for (const [name, validity] of Object.entries(lives)) {
      const host = `127.0.${SUBNET}.${i++}`;
      const c = await makeCert(join(lab.opts.root, 'short-lived'), name, ca, [host], validity);
      issued[name] = { ...c, validity };
      listeners.push(await serve(host, c));
    }
  });

  afterAll(async () => {
    for (const l of listeners) await new Promise((r) => l.server.close(r));
    await lab?.stop();
  });

  it('reads every member\'s client and peer certificate and the bot\'s client certificate, as openssl reads the files', async () => {
    const members = await lab.memberList();
    const { targets, notes } = certTargets(
      cluster,
      members.map((m) => ({ name: m.name, peerURLs: [m.peer] })),
    );
    expect(notes).toEqual(['kube-apiserver and kubelet certificates not checked: the cluster has no kubeconfig in the inventory']);
    expect(targets.map((t) => t.label)).toEqual([
      ...lab.hosts.map((h) => `etcd ${h.name} client ${h.clientUrl}`),
      ...members.map((m) => `etcd ${m.name} peer ${m.peer}`),
      `the bot's etcd client certificate ${lab.tls.cert}`,
    ]);

    const readings = await readTargets(cluster, targets);
    for (const h of lab.hosts) {
      for (const [kind, file] of [['etcd-client', 'server.crt'], ['etcd-peer', 'peer.crt']] as const) {
        const r = ok(readings.find((x) => x.target.kind === kind && x.target.host === h.ip));
        const ref = await opensslDates(join(h.pkiDir, file));
        expect(r.cert.notAfter).toEqual(ref.notAfter);
        expect(r.cert.subject).toBe(ref.subject);
        expect(r.cert.subject).toBe(`CN=${h.name}-${kind === 'etcd-client' ? 'server' : 'peer'}`);
        expect(r.cert.issuer).toBe('CN=etcd-ca');
        // The etcd CA vouches for it and its IP SAN matches the address asked.
        expect(r.untrusted).toBeNull();
        // The lab makes 30-day certificates: inside the 30-day warning window from the start.
        expect(r.expiry.level).toBe('warn');
        expect(r.expiry.text).toBe(`expires in ${Math.floor((ref.notAfter.getTime() - Date.now()) / DAY)} days (${ref.notAfter.toISOString().slice(0, 10)})`);
      }
    }
    const bot = ok(readings.find((r) => r.target.kind === 'bot-client'));
    expect(bot.cert.notAfter).toEqual((await opensslDates(lab.tls.cert)).notAfter);
    expect(bot.cert.subject).toBe('CN=etcd-medic-client');
  });

  it('names an expired and a soon-to-expire certificate, and leaves a long-lived one alone', async () => {
    const targets: CertTarget[] = listeners.map((l, i) => ({ kind: 'kube-apiserver', label: ['expired', 'soon', 'long'][i]!, host: l.host, port: l.port }));
    const readings = await readTargets(cluster, targets);
    const [expired, soon, long] = readings.map(ok);
    const v = (name: string) => issued[name]!.validity as { notAfter: Date };
    expect(expired!.cert.notAfter).toEqual(new Date(Math.floor(v('expired').notAfter.getTime() / 1000) * 1000));
    expect(expired!.expiry).toMatchObject({ level: 'error', text: `expired 2 days ago (${v('expired').notAfter.toISOString().slice(0, 10)})` });
    expect(soon!.expiry).toMatchObject({ level: 'warn', daysLeft: 3, text: `expires in 3 days (${v('soon').notAfter.toISOString().slice(0, 10)})` });
    expect(long!.expiry).toMatchObject({ level: 'ok', daysLeft: 400 });
    // What /etcd status would warn about: the expired one and the one within 7 days.
    expect(urgentReadings(readings).map((r) => r.target.label)).toEqual(['expired', 'soon']);
    // A handshake only: each listener was reached and never received a byte of application data.
    for (const l of listeners) {
      expect(l.connections).toBe(1);
      expect(l.bytesReceived).toBe(0);
    }
  });

  it('a member that is down, and a port that never answers, are reasons, not hangs', async () => {
    await lab.stopMember('m3');
    try {
      const m3 = lab.host('m3');
      const { targets } = certTargets(cluster, [{ name: 'm3', peerURLs: [m3.peerUrl] }]);
      const readings = await readTargets(cluster, targets, { timeoutMs: 2000 });
      const byLabel = Object.fromEntries(readings.map((r) => [r.target.label, r.ok ? r.expiry.level : r.error]));
      expect(byLabel[`etcd m3 client ${m3.clientUrl}`]).toBe(`connection refused (${m3.ip}:2379)`);
      expect(byLabel[`etcd m3 peer ${m3.peerUrl}`]).toBe(`connection refused (${m3.ip}:2380)`);
      expect(byLabel[`etcd m1 client ${lab.host('m1').clientUrl}`]).toBe('warn');

      const silentHost = `127.0.${SUBNET}.30`;
      const silent: TcpServer = createTcpServer((s) => s.resume());
      const port = await freePort(silentHost);
      await new Promise<void>((r) => silent.listen(port, silentHost, r));
      try {
        const t0 = Date.now();
        expect(await readServingCert(silentHost, port, { timeoutMs: 700 })).toEqual({ ok: false, error: `no TLS handshake with ${silentHost}:${port} within 0.7 s` });
        expect(Date.now() - t0).toBeLessThan(3000);
      } finally {
        silent.close();
      }
    } finally {
      await lab.startMember('m3');
    }
  });
});
