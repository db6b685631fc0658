import { randomBytes } from 'node:crypto';
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

/**
 * How long a lab certificate is valid: a number of days from now (openssl's
 * default way), or exact dates, for certificates already expired or about to.
 */
export type Validity = { days: number } | { notBefore: Date; notAfter: Date };

/** A cert for serving and for client auth, valid for the given IPs (etcd checks peer SANs). */
export async function makeCert(
  dir: string,
  name: string,
  ca: { cert: string; key: string },
  ips: string[],
  validity: Validity = { days: 30 },
  /** A subject other than CN=<name> (openssl's -subj, `/O=…/CN=…`), and DNS names beside the IPs. */
  more: { subj?: string; dns?: string[] } = {},
): Promise<{ cert: string; key: string }> {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  const alt = [...(more.dns ?? []).map((d) => `DNS:${d}`), ...ips.map((ip) => `IP:${ip}`)];
  const san = alt.length ? `subjectAltName=${alt.join(',')}\n` : '';
  writeFileSync(ext, `${san}extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', more.subj ?? `/CN=${name}`, '-out', csr]);
  if ('days' in validity) {
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', String(validity.days), '-sha256', '-extfile', ext, '-out', cert]);
  } else {
    await signWithDates(dir, name, ca, csr, ext, cert, validity);
  }
  return { cert, key };
}

/** openssl YYYYMMDDHHMMSSZ */
const asn1Time = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';

/**
 * `openssl x509 -req` (3.0) only counts days forward from now; `openssl ca` takes
 * explicit start and end dates, so it makes a certificate that expired yesterday
 * or one that ends in three days. It needs a small CA database of its own.
 */
async function signWithDates(dir: string, name: string, ca: { cert: string; key: string }, csr: string, ext: string, cert: string, v: { notBefore: Date; notAfter: Date }): Promise<void> {
  const db = join(dir, `${name}.ca`);
  mkdirSync(join(db, 'new'), { recursive: true });
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'serial'), `${randomBytes(8).toString('hex')}\n`);
  const conf = join(db, 'ca.cnf');
  writeFileSync(
    conf,
    `[ ca ]\ndefault_ca = lab\n[ lab ]\ndatabase = ${join(db, 'index.txt')}\nnew_certs_dir = ${join(db, 'new')}\nserial = ${join(db, 'serial')}\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[ any ]\ncommonName = supplied\n`,
  );
  await run('openssl', ['ca', '-batch', '-config', conf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert, '-startdate', asn1Time(v.notBefore), '-enddate', asn1Time(v.notAfter), '-extfile', ext, '-notext']);
}
