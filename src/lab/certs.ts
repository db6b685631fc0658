import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './proc.js';

/** An EC CA as real clusters have (kubeadm makes one for etcd, CN etcd-ca, and one for Kubernetes, CN kubernetes). */
export async function makeCa(dir: string, cn = 'etcd-ca', days = 30): Promise<{ cert: string; key: string }> {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'ca.key');
  const cert = join(dir, 'ca.crt');
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await run('openssl', ['req', '-x509', '-new', '-key', key, '-sha256', '-days', String(days), '-subj', `/CN=${cn}`, '-out', cert]);
  return { cert, key };
}

/** A cert for serving and for client auth, valid for the given IPs (etcd checks peer SANs). */
export async function makeCert(
  dir: string,
  name: string,
  ca: { cert: string; key: string },
  ips: string[],
): Promise<{ cert: string; key: string }> {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  const san = ips.length ? `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\n` : '';
  writeFileSync(ext, `${san}extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '30', '-sha256', '-extfile', ext, '-out', cert]);
  return { cert, key };
}
