import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/lab/proc.js';

export type KeySpec = 'rsa:1024' | 'rsa:2048' | 'ec:P-256' | 'ec:P-384' | 'ed25519';

/**
 * A PKCS#10 request made by openssl, as a kubelet's or an operator's tool makes one:
 * `subject` in openssl's -subj form ("/O=system:nodes/CN=system:node:m1"),
 * `san` in its subjectAltName form ("DNS:m1,IP:10.0.0.1").
 */
export async function opensslCsr(key: KeySpec, subject: string, san?: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'medic-csr-'));
  try {
    const keyArgs =
      key === 'ed25519'
        ? ['-newkey', 'ed25519']
        : key.startsWith('rsa:')
          ? ['-newkey', key]
          : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${key.slice(3)}`];
    const out = join(dir, 'req.csr');
    await run('openssl', ['req', '-new', ...keyArgs, '-nodes', '-keyout', join(dir, 'req.key'), '-subj', subject, ...(san ? ['-addext', `subjectAltName=${san}`] : []), '-out', out]);
    return readFileSync(out, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The PEM as a CSR object's spec.request carries it (base64 of the PEM bytes). */
export const asRequest = (pem: string) => Buffer.from(pem).toString('base64');
