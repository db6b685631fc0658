import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../proc.js';

export interface Ca {
  cert: string;
  key: string;
}

export interface Subject {
  cn: string;
  /** Organisations: Kubernetes reads them as the groups of a client cert's user. */
  o?: string[];
  dns?: string[];
  ips?: string[];
}

/** Key usages as certificates.k8s.io/v1 names them. */
export type Usage = 'digital signature' | 'key encipherment' | 'client auth' | 'server auth';

const KEY_USAGE: Partial<Record<Usage, string>> = { 'digital signature': 'digitalSignature', 'key encipherment': 'keyEncipherment' };
const EXT_KEY_USAGE: Partial<Record<Usage, string>> = { 'client auth': 'clientAuth', 'server auth': 'serverAuth' };

const DAY = 86_400_000;

function subj(s: Subject): string {
  // `/` and `\` are openssl's separators in -subj; lab names never hold them, so refuse rather than escape.
  for (const v of [s.cn, ...(s.o ?? [])]) if (/[/\\]/.test(v)) throw new Error(`subject value ${JSON.stringify(v)} holds / or \\`);
  return `${(s.o ?? []).map((o) => `/O=${o}`).join('')}/CN=${s.cn}`;
}

/** A fresh key (EC P-256, what a kubelet generates; RSA when asked) and a PEM PKCS#10 request for it. */
export async function makeCsr(dir: string, s: Subject, keyType: 'ec' | 'rsa' = 'ec'): Promise<{ keyPem: string; csrPem: string }> {
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, 'csr-'));
  try {
    const key = join(tmp, 'k.key');
    if (keyType === 'ec') await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    else await run('openssl', ['genrsa', '-out', key, '2048']);
    const san = [...(s.dns ?? []).map((d) => `DNS:${d}`), ...(s.ips ?? []).map((ip) => `IP:${ip}`)];
    const args = ['req', '-new', '-key', key, '-subj', subj(s), '-out', join(tmp, 'r.csr')];
    if (san.length) args.push('-addext', `subjectAltName=${san.join(',')}`);
    await run('openssl', args);
    return { keyPem: readFileSync(key, 'utf8'), csrPem: readFileSync(join(tmp, 'r.csr'), 'utf8') };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** openssl's GeneralizedTime, the format `openssl ca -startdate/-enddate` takes. */
function asn1Time(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * Signs a PEM request with the CA for the given usages and validity window, copying its
 * SANs, as a CSR signer does. `openssl ca` (not `x509 -req`) because only it takes an
 * explicit start and end: that is how the lab makes already-expired and hour-long certs.
 */
export async function signCsr(dir: string, ca: Ca, csrPem: string, usages: Usage[], validity: { notBefore?: Date; notAfter?: Date } = {}): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, 'sign-'));
  try {
    writeFileSync(join(tmp, 'index.txt'), '');
    writeFileSync(
      join(tmp, 'ca.cnf'),
      `[ca]\ndefault_ca=lab\n[lab]\ndatabase=${tmp}/index.txt\nnew_certs_dir=${tmp}\nrand_serial=yes\ndefault_md=sha256\npolicy=any\nunique_subject=no\ncopy_extensions=copy\n` +
        '[any]\norganizationName=optional\norganizationalUnitName=optional\ncommonName=optional\n',
    );
    const ku = usages.map((u) => KEY_USAGE[u]).filter(Boolean);
    const eku = usages.map((u) => EXT_KEY_USAGE[u]).filter(Boolean);
    writeFileSync(
      join(tmp, 'ext'),
      ['basicConstraints=critical,CA:FALSE', ku.length ? `keyUsage=critical,${ku.join(',')}` : '', eku.length ? `extendedKeyUsage=${eku.join(',')}` : ''].filter(Boolean).join('\n') + '\n',
    );
    writeFileSync(join(tmp, 'r.csr'), csrPem);
    const notBefore = validity.notBefore ?? new Date(Date.now() - 60_000);
    const notAfter = validity.notAfter ?? new Date(Date.now() + 365 * DAY);
    await run('openssl', [
      'ca', '-batch', '-config', join(tmp, 'ca.cnf'), '-cert', ca.cert, '-keyfile', ca.key, '-in', join(tmp, 'r.csr'), '-out', join(tmp, 'out.crt'),
      '-notext', '-preserveDN', '-extfile', join(tmp, 'ext'), '-startdate', asn1Time(notBefore), '-enddate', asn1Time(notAfter),
    ]);
    return readFileSync(join(tmp, 'out.crt'), 'utf8');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A key and a cert in one go: serving certs of the lab's listeners and client certs of its users. */
export async function issue(dir: string, ca: Ca, s: Subject, usages: Usage[], validity: { notBefore?: Date; notAfter?: Date } = {}): Promise<{ keyPem: string; certPem: string }> {
  const { keyPem, csrPem } = await makeCsr(dir, s);
  return { keyPem, certPem: await signCsr(dir, ca, csrPem, usages, validity) };
}
