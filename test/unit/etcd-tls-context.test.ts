import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdContext, readTargets, type CertTarget } from '../../src/certs/targets.js';
import { parseInventory } from '../../src/config/load.js';
import { makeCa, makeCert } from '../../src/lab/certs.js';

/**
 * The etcd handshakes of status and `/etcd certs` present the bot's client certificate
 * from a context kept while its files are unchanged: a real TLS server that asks for a
 * client certificate records which one it was shown.
 */
describe("the bot's etcd client certificate on certificate readings", () => {
  const dir = mkdtempSync(join(tmpdir(), 'medic-etcd-ctx-'));
  let server: Server;
  let port = 0;
  const shown: string[] = [];
  let files: { cert: string; key: string; ca: string };
  let renewed: { cert: string; key: string };

  beforeAll(async () => {
    const ca = await makeCa(join(dir, 'ca'));
    const member = await makeCert(join(dir, 'm1'), 'm1', ca, ['127.0.0.1']);
    const first = await makeCert(join(dir, 'bot-a'), 'bot-a', ca, ['127.0.0.1']);
    renewed = await makeCert(join(dir, 'bot-b'), 'bot-b', ca, ['127.0.0.1']);
    // The bot's files, at the paths the inventory names: renewing them overwrites them in place.
    files = { cert: join(dir, 'client.crt'), key: join(dir, 'client.key'), ca: ca.cert };
    copyFileSync(first.cert, files.cert);
    copyFileSync(first.key, files.key);
    server = createServer({ cert: readFileSync(member.cert), key: readFileSync(member.key), ca: readFileSync(ca.cert), requestCert: true, rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, (s: TLSSocket) => {
      shown.push(String(s.getPeerCertificate().subject?.CN));
      s.end();
    });
    server.on('tlsClientError', (e) => shown.push(`error: ${e.message}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const cluster = () =>
    parseInventory(
      `clusters:
  - name: ctx
    etcd: { endpoints: ["https://127.0.0.1:${port}"], tls: { ca: ${files.ca}, cert: ${files.cert}, key: ${files.key} } }
    members:
      - { name: m1, host: 127.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: SHA256:${'A'.repeat(43)} } }`,
      'i.yaml',
    ).clusters[0]!;
  const target: CertTarget = { kind: 'etcd-client', label: 'etcd m1 client', member: 'm1', host: '127.0.0.1', port: 0 };
  const readOnce = async () => {
    const n = shown.length;
    const [r] = await readTargets(cluster(), [{ ...target, port }], { timeoutMs: 2000 });
    expect(r).toMatchObject({ ok: true, untrusted: null });
    // Under TLS 1.2 the server has its side of the handshake (and the client certificate) before the client is done.
    await expect.poll(() => shown.length, { timeout: 2000 }).toBe(n + 1);
  };

  it('keeps one context while the files are the same, and presents a renewed certificate from the next reading on', async () => {
    expect(etcdContext(files)).toBe(etcdContext(files));
    await readOnce();
    await readOnce();
    await expect.poll(() => shown.slice(), { timeout: 2000 }).toEqual(['bot-a', 'bot-a']);
    const before = etcdContext(files);
    copyFileSync(renewed.cert, files.cert);
    copyFileSync(renewed.key, files.key);
    expect(etcdContext(files)).not.toBe(before);
    await readOnce();
    await expect.poll(() => shown.slice(), { timeout: 2000 }).toEqual(['bot-a', 'bot-a', 'bot-b']);
  });
});
