import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyExpiry, readPemCertFile } from '../../src/certs/expiry.js';
import { certTargets } from '../../src/certs/targets.js';
import { parseInventory } from '../../src/config/load.js';

const now = new Date('2026-11-24T12:00:00Z');
const day = 86_400_000;
const valid = (fromDays: number, toDays: number) => ({ notBefore: new Date(now.getTime() + fromDays * day), notAfter: new Date(now.getTime() + toDays * day) });

describe('classifying a certificate\'s expiry', () => {
  it.each([
    ['a year left', valid(-10, 365), 'ok', 'expires in 365 days (2027-11-24)'],
    ['31 days left', valid(-10, 31), 'ok', 'expires in 31 days (2026-12-25)'],
    ['29 days left', valid(-10, 29.5), 'warn', 'expires in 29 days (2026-12-24)'],
    ['one day left', valid(-10, 1.2), 'warn', 'expires in 1 day (2026-11-25)'],
    ['hours left', valid(-10, 0.25), 'warn', 'expires in less than a day (2026-11-24)'],
    ['expired today', valid(-10, -0.25), 'error', 'expired today (2026-11-24)'],
    ['expired 3 days ago', valid(-30, -3), 'error', 'expired 3 days ago (2026-11-21)'],
    ['not valid yet', valid(2, 100), 'error', 'not valid before 2026-11-26T12:00:00.000Z'],
  ] as const)('%s', (_name, dates, level, text) => {
    const e = classifyExpiry(dates, now);
    expect(e.level).toBe(level);
    expect(e.text).toBe(text);
  });
});

describe('reading a PEM file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medic-pem-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says when the file is missing or holds no certificate', () => {
    expect(readPemCertFile(join(dir, 'nope.crt'))).toEqual({ ok: false, error: `cannot read ${join(dir, 'nope.crt')} (ENOENT)` });
    writeFileSync(join(dir, 'junk.crt'), 'not a certificate');
    const r = readPemCertFile(join(dir, 'junk.crt'));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(new RegExp(`^${join(dir, 'junk.crt')} holds no PEM certificate`));
  });
});

describe('the certificates a cluster\'s recovery depends on', () => {
  const fp = 'SHA256:' + 'A'.repeat(43);
  const inventory = (extra: string, endpoints = '["https://10.0.0.1:2379", "https://10.0.0.2:2379"]') =>
    parseInventory(
      `clusters:
  - name: prod
    etcd:
      endpoints: ${endpoints}
      tls: { ca: /pki/ca.crt, cert: /pki/medic.crt, key: /pki/medic.key }
    ${extra}
    members:
      - { name: m1, host: 10.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${fp} } }
      - { name: m2, host: 10.0.0.2, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${fp} } }
`,
      't.yaml',
    ).clusters[0]!;

  it('lists etcd client and peer URLs, the bot\'s client cert, and each master\'s apiserver and kubelet', () => {
    const { targets, notes } = certTargets(inventory('kubeconfig: /etc/medic/kubeconfig'), [
      { name: 'm1', peerURLs: ['https://10.0.0.1:2380'] },
      { name: 'm2', peerURLs: ['https://10.0.0.2:2380'] },
    ]);
    expect(targets.map((t) => t.label)).toEqual([
      'etcd m1 client https://10.0.0.1:2379',
      'etcd m2 client https://10.0.0.2:2379',
      'etcd m1 peer https://10.0.0.1:2380',
      'etcd m2 peer https://10.0.0.2:2380',
      "the bot's etcd client certificate /pki/medic.crt",
      'kube-apiserver on m1 10.0.0.1:6443',
      'kubelet on m1 10.0.0.1:10250',
      'kube-apiserver on m2 10.0.0.2:6443',
      'kubelet on m2 10.0.0.2:10250',
    ]);
    expect(notes).toEqual([]);
  });

  it('says what it could not list: peers without a member list, Kubernetes without a kubeconfig, plain HTTP', () => {
    const { targets, notes } = certTargets(inventory('', '["http://10.0.0.1:2379", "https://10.0.0.2:2379"]'), null);
    expect(targets.map((t) => t.kind)).toEqual(['etcd-client', 'bot-client']);
    expect(notes).toEqual([
      'http://10.0.0.1:2379: plain HTTP, no certificate',
      'etcd peer certificates not checked: no member answered the member list, which names the peer URLs',
      'kube-apiserver and kubelet certificates not checked: the cluster has no kubeconfig in the inventory',
    ]);
  });
});
