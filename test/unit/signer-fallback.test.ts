import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa } from '../../src/lab/certs.js';
import { signerPlaces, signerProblem } from '../../src/worker/steps/cert-steps.js';

const dir = mkdtempSync(join(tmpdir(), 'medic-signer-'));
let caPem = '';
let otherPem = '';
let sha = '';

beforeAll(async () => {
  caPem = readFileSync((await makeCa(join(dir, 'ca'), 'etcd-ca')).cert, 'utf8');
  otherPem = readFileSync((await makeCa(join(dir, 'other'), 'other-ca')).cert, 'utf8');
  sha = new X509Certificate(caPem).fingerprint256;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const place = { name: 'm1', caCert: '/pki/ca.crt', caKey: '/pki/ca.key' };
const look = (pem: string | null, key: 'present' | 'absent' | 'unreadable') => `${pem ? `medic-file ca\n${pem}\nmedic-end` : 'medic-absent ca'}\nmedic-ca-key ${key}`;

describe('which surviving master signs a member\'s certificates', () => {
  it('asks the planned signer first, then each fallback once, never the member itself', () => {
    const p = { name: 'm3', signer: 'm1', signerCaCert: '/a/ca.crt', signerCaKey: '/a/ca.key', fallbackSigners: [{ name: 'm2', caCert: '/b/ca.crt', caKey: '/b/ca.key' }, { name: 'm1', caCert: '/a/ca.crt', caKey: '/a/ca.key' }, { name: 'm3', caCert: '/c/ca.crt', caKey: '/c/ca.key' }] };
    expect(signerPlaces(p).map((s) => s.name)).toEqual(['m1', 'm2']);
    // A run planned before fallbacks existed asks its one signer.
    expect(signerPlaces({ ...p, fallbackSigners: undefined }).map((s) => s.name)).toEqual(['m1']);
  });

  it('a master can sign only with the planned CA certificate and its key readable', () => {
    expect(signerProblem(look(caPem, 'present'), place, sha)).toBeNull();
    expect(signerProblem(look(caPem, 'absent'), place, sha)).toBe('no etcd CA key at /pki/ca.key');
    expect(signerProblem(look(caPem, 'unreadable'), place, sha)).toBe('the etcd CA key at /pki/ca.key is not readable');
    expect(signerProblem(look(null, 'present'), place, sha)).toBe('no etcd CA certificate at /pki/ca.crt');
    expect(signerProblem(look(otherPem, 'present'), place, sha)).toMatch(/^its CA at \/pki\/ca\.crt is another one \(sha256 [0-9A-F:]{23}…\) than the one planned against$/);
  });
});
