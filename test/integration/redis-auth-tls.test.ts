import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { IncidentStore } from '../../src/incident/store.js';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { portOpen } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import { freePort } from '../../src/lab/redis.js';
import { createLogger } from '../../src/log.js';
import { connectRedis } from '../../src/queue/redis.js';
import { startMedic, type Medic } from '../../src/runtime.js';

const FP = 'SHA256:' + 'A'.repeat(43);

// A Redis that speaks only TLS and wants a password, as the chart's Redis should.
describe('Redis with AUTH and TLS (rediss://)', () => {
  const dir = join(inject('labRoot'), 'redis-tls');
  const password = randomBytes(16).toString('hex');
  let redis: ChildProcess;
  let port = 0;
  let url = '';
  const ca = join(dir, 'ca.crt');

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=medic-test-ca');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'redis.key', '-out', 'redis.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'redis.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'redis.crt', '-days', '1', '-extfile', 'ext.cnf');
    port = await freePort();
    redis = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--tls-cert-file', join(dir, 'redis.crt'), '--tls-key-file', join(dir, 'redis.key'), '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no', '--dir', dir, '--save', '', '--logfile', join(dir, 'redis.log')], { stdio: 'ignore' });
    await waitFor(`redis TLS on ${port}`, () => portOpen('127.0.0.1', port), 10_000, 50);
    url = `rediss://127.0.0.1:${port}`;
  });
  afterAll(() => {
    redis?.kill('SIGTERM');
  });

  it('connects with the password and the CA, and refuses without them', async () => {
    const good = connectRedis(url, { password, tlsCaFile: ca });
    expect(await good.ping()).toBe('PONG');
    good.disconnect();
    // No password: the server says NOAUTH.
    const noAuth = connectRedis(url, { tlsCaFile: ca });
    noAuth.on('error', () => undefined); // its ready check is refused too; the ping below says how
    await expect(noAuth.ping()).rejects.toThrow(/NOAUTH|Authentication required/);
    noAuth.disconnect();
  });

  it('runs the bot and a worker over it: ready, with the timeline chain written and checked', async () => {
    const inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, `workspace: { teamId: TLAB }\nclusters:\n  - name: lab\n    etcd: { endpoints: ["https://127.0.0.1:1"] }\n    members:\n      - { name: m1, host: 127.0.0.1, ssh: { user: root, keyFile: /k, hostKeyFingerprint: ${FP} } }\n`);
    const slack = new FakeSlack();
    await slack.start();
    const logs: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) });
    const config = loadConfig({
      ETCD_MEDIC_INVENTORY: inventory,
      REDIS_URL: url,
      REDIS_PASSWORD: password,
      REDIS_TLS_CA: ca,
      QUEUE_PREFIX: `t-tls-${randomBytes(3).toString('hex')}`,
      PORT: '0',
      HOST: '127.0.0.1',
      SLACK_BOT_TOKEN: `xoxb-tls-${randomBytes(8).toString('hex')}`,
      SLACK_SIGNING_SECRET: randomBytes(16).toString('hex'),
      SLACK_API_URL: slack.apiUrl,
      ETCD_MEDIC_HMAC_KEY: randomBytes(32).toString('hex'),
    });
    let medic: Medic | undefined;
    try {
      medic = await startMedic(config, createLogger('debug', sink), { bot: true, worker: true });
      const readyz = `http://127.0.0.1:${medic.bot!.port}/readyz`;
      await waitFor('a live worker over TLS', async () => (await fetch(readyz)).status === 200, 30_000, 200);
      expect(await (await fetch(readyz)).json()).toEqual({ ok: true, redis: 'up', workers: 1 });
      const r = connectRedis(url, { password, tlsCaFile: ca });
      const store = new IncidentStore(r, config.settings.queuePrefix, config.settings.hmacKey);
      const { incident } = await store.open('CTLS', 'over tls', 'UALICE');
      await store.append(incident.id, { kind: 'note', actor: 'UALICE', text: 'hello' });
      expect(await store.verify(incident.id)).toEqual({ ok: true, count: 2 });
      r.disconnect();
      // The password is never in the logs.
      expect(logs.join('')).not.toContain(password);
    } finally {
      await medic?.stop();
      await slack.stop();
    }
  });
});
