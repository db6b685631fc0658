import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusCertLine, statusCertReadings } from '../../src/certs/status-check.js';
import { parseInventory } from '../../src/config/load.js';
import { makeCa, makeCert } from '../../src/lab/certs.js';
import type { StatusReport } from '../../src/status/assess.js';

const DAY = 86_400_000;
const listen = (s: Server | TcpServer) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

/**
 * `/etcd status` reads certificates beside its etcd view: real TLS listeners on
 * loopback, one that never finishes a handshake, and a view that takes its time.
 */
describe('the certificate readings of /etcd status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medic-status-certs-'));
  const servers: (Server | TcpServer)[] = [];
  let expiredPort = 0;
  let soonPort = 0;
  let silentPort = 0;
  const connections = new Map<number, number>();

  beforeAll(async () => {
    const ca = await makeCa(join(dir, 'ca'));
    const now = Date.now();
    const serve = async (name: string, notBefore: number, notAfter: number) => {
      const c = await makeCert(join(dir, name), name, ca, ['127.0.0.1'], { notBefore: new Date(notBefore), notAfter: new Date(notAfter) });
      const s = createServer({ cert: readFileSync(c.cert), key: readFileSync(c.key) });
      s.on('tlsClientError', () => undefined);
      servers.push(s);
      const port = await listen(s);
      s.on('connection', () => connections.set(port, (connections.get(port) ?? 0) + 1));
      return port;
    };
    expiredPort = await serve('expired', now - 40 * DAY, now - 2 * DAY - 3_600_000);
    soonPort = await serve('soon', now - DAY, now + 3 * DAY + 3_600_000);
    // The fault: a port that accepts and then says nothing (a hung process, a middlebox).
    const silent = createTcpServer((sock) => sock.resume());
    servers.push(silent);
    silentPort = await listen(silent);
  });
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  // Each test its own cluster name: handshakes still in flight from another test are not shared with it.
  const cluster = (name: string) =>
    parseInventory(
      `clusters:
  - name: ${name}
    etcd: { endpoints: ["https://127.0.0.1:${expiredPort}", "https://127.0.0.1:${silentPort}"], callTimeoutMs: 2000 }
    members:
      - { name: m1, host: 127.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: SHA256:${'A'.repeat(43)} } }`,
      'i.yaml',
    ).clusters[0]!;
  /** The etcd view, answering after `ms` with a member list that names the peer URL to read. */
  const viewAfter = (ms: number) =>
    new Promise<{ report: StatusReport }>((r) =>
      setTimeout(() => r({ report: { members: [{ name: 'm1', started: true, idHex: 'a1', peerURLs: [`https://127.0.0.1:${soonPort}`] }] } as unknown as StatusReport }), ms),
    );

  it('answers a grace after the view, not at the deadline, with what it read: a silent port is left out, not waited for', async () => {
    const t0 = Date.now();
    const readings = await statusCertReadings(cluster('a'), viewAfter(150), { graceMs: 250 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(150);
    expect(took).toBeLessThan(1500); // the silent port would hold it until the deadline, 2000 ms
    const byPort = Object.fromEntries(readings.map((r) => [r.target.kind === 'bot-client' ? r.target.file : r.target.port, r.ok ? r.expiry.level : r.error]));
    expect(byPort).toEqual({ [expiredPort]: 'error', [soonPort]: 'warn' });
    expect(statusCertLine(readings)).toMatch(/^:warning: 2 certificates expired or ending within 7 days: etcd client of m1 expired 2 days ago \(.*\); etcd peer of m1 expires in 3 days \(.*\)\. `\/etcd certs`/);
  });

  it('never outlives the deadline: a view slower than it leaves the peers unread', async () => {
    const t0 = Date.now();
    const readings = await statusCertReadings(cluster('b'), viewAfter(600), { deadlineMs: 300 });
    expect(Date.now() - t0).toBeLessThan(1500);
    // The silent port ran into the deadline (a reason, not a warning); the peer was never asked.
    const byPort = Object.fromEntries(readings.map((r) => [r.target.kind === 'bot-client' ? r.target.file : r.target.port, r.ok ? r.expiry.level : r.error]));
    expect(byPort).toEqual({ [expiredPort]: 'error', [silentPort]: `no TLS handshake with 127.0.0.1:${silentPort} within 0.3 s` });
    expect(statusCertLine(readings)).toMatch(/^:warning: A certificate expired or ending within 7 days: etcd client of m1 expired 2 days ago/);
  });

  it('status jobs running at the same time share each handshake instead of repeating it; one asked afterwards reads afresh', async () => {
    const c = cluster('c');
    const before = connections.get(expiredPort) ?? 0;
    const together = await Promise.all([1, 2, 3, 4].map(() => statusCertReadings(c, viewAfter(50), { graceMs: 100 })));
    for (const readings of together) expect(readings.find((r) => r.target.kind === 'etcd-client' && r.target.port === expiredPort)).toMatchObject({ ok: true, expiry: { level: 'error' } });
    expect((connections.get(expiredPort) ?? 0) - before).toBe(1);
    await statusCertReadings(c, viewAfter(50), { graceMs: 100 });
    expect((connections.get(expiredPort) ?? 0) - before).toBe(2);
  });

  it('reads the peer URLs the last member list named from its start, and counts them only while the member list still names them', async () => {
    const c = cluster('d');
    const peerPorts = (rs: Awaited<ReturnType<typeof statusCertReadings>>) => rs.filter((r) => r.target.kind === 'etcd-peer').map((r) => (r.target.kind === 'etcd-peer' ? r.target.port : 0));
    // No grace after the view: the first status has no time left to read the peer it just learned of.
    const first = await statusCertReadings(c, viewAfter(100), { graceMs: 0 });
    expect(peerPorts(first)).toEqual([]);
    // The next one read it while the members were asked.
    const second = await statusCertReadings(c, viewAfter(100), { graceMs: 0 });
    expect(peerPorts(second)).toEqual([soonPort]);
    expect(second.find((r) => r.target.kind === 'etcd-peer')).toMatchObject({ ok: true, expiry: { level: 'warn' } });
    // The member list changed (m1's peer URL moved): what was read at the old URL is not shown.
    const moved = new Promise<{ report: StatusReport }>((r) =>
      setTimeout(() => r({ report: { members: [{ name: 'm1', started: true, idHex: 'a1', peerURLs: [`https://127.0.0.1:${expiredPort}`] }] } as unknown as StatusReport }), 100),
    );
    const third = await statusCertReadings(c, moved, { graceMs: 0 });
    expect(peerPorts(third)).toEqual([]);
  });
});
