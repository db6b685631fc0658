import { createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { dirname } from 'node:path';
import { certMatchesKey, issuedCertProblem, memberCertProblem, reachedAt, subjectText } from '../../certs/member-cert.js';
import { killAtFault } from '../../fault.js';
import { decodePkcs10Pem } from '../../kube/csr-decode.js';
import type { MemberCert } from '../../platform/index.js';
import type { StepResult } from '../../runbook/engine.js';
import type { StepOf } from '../../runbook/types.js';
import type { SshTarget } from '../../ssh/exec.js';
import { sh } from '../../ssh/shell.js';
import { lockWaitSeconds, memberLockOf, runScript, type HostStepContext } from './host-steps.js';
import { underMemberLock } from './member-lock.js';

type IssueCerts = StepOf<'issue-certs'>;
export type CertParams = IssueCerts['params']['certs'][number];

/**
 * Issuing a member's etcd certificates onto its own host, the way kubeadm's
 * `certs` phase does on a master, with the CA key kept where it is:
 * - the member's keys are made ON its host (openssl) in the run's staging dir
 *   (`<aside dir>/certs-<run>`), and never leave it: only their CSRs and
 *   public halves are read;
 * - each CSR is signed on a surviving master with the etcd CA key there, which
 *   never leaves that master: the signer sets the subject's names, usages and
 *   validity (extensions of the request are not copied);
 * - the signed certificate is checked against the CA, its names and the staged
 *   key, written into the staging dir and then installed, whatever was at the
 *   member's paths moved aside under the run's name, never deleted.
 * Every part looks first: a certificate already valid in place is kept (a
 * second execution issues nothing), a staged key is signed again rather than
 * made anew, a staged certificate that is valid is installed without a new
 * signing. Keys are RSA 2048, as kubeadm makes them.
 */

/** A certificate's wishes as the platform describes them, from the step's params. */
export function wantOf(c: CertParams, cas: { name: string; what: string }[] = []): MemberCert {
  // The CA that signs it, by the words the plan used ("etcd metric CA"), so that what is said of it names that CA.
  const other = c.ca ? cas.find((x) => x.name === c.ca) : undefined;
  return { role: c.role, cert: c.cert, key: c.key, subject: { cn: c.cn, o: c.o }, usages: c.usages, sans: { dns: c.dns, ips: c.ips }, ...(other ? { signedBy: { name: other.name, what: other.what, caCert: '', caKey: '' } } : {}) };
}

export const stagedKey = (staging: string, role: string) => `${staging}/${role}.key`;
export const stagedCert = (staging: string, role: string) => `${staging}/${role}.crt`;

/** A file a look at the pki prints: a certificate whole, or of a key only its public half. */
export interface PkiFile {
  label: string;
  path: string;
  kind: 'cert' | 'key';
}

/**
 * Lines that print each file between `medic-file <label>` and `medic-end`, or
 * `medic-absent <label>`. Of a key only the public half is printed (openssl
 * pkey -pubout): the private key never leaves its host, not even to the bot.
 */
export function pkiLookLines(files: PkiFile[]): string[] {
  return files.map((f) =>
    f.kind === 'cert'
      ? sh`if [ -f ${f.path} ]; then echo ${`medic-file ${f.label}`}; cat ${f.path}; echo; echo medic-end; else echo ${`medic-absent ${f.label}`}; fi`
      : sh`if [ -f ${f.path} ] && pub=$(openssl pkey -in ${f.path} -pubout -passin pass: </dev/null 2>/dev/null); then echo ${`medic-file ${f.label}`}; printf '%s\n' "$pub"; echo medic-end; else echo ${`medic-absent ${f.label}`}; fi`,
  );
}

/** The files pkiLookLines printed, by label (absent ones are not in the map). */
export function parsePkiLook(out: string): Map<string, string> {
  const files = new Map<string, string>();
  let label: string | null = null;
  let body: string[] = [];
  for (const line of out.split('\n')) {
    if (label === null) {
      const m = /^medic-file (\S+)$/.exec(line);
      if (m) {
        label = m[1]!;
        body = [];
      }
    } else if (line === 'medic-end') {
      files.set(label, body.join('\n'));
      label = null;
    } else body.push(line);
  }
  return files;
}

/** The first PEM block of a kind in a text (openssl's own lines around it left out). */
export function pemBlock(text: string | undefined, kind: 'CERTIFICATE' | 'CERTIFICATE REQUEST' | 'PUBLIC KEY'): string | null {
  const m = new RegExp(`-----BEGIN ${kind}-----\\n[A-Za-z0-9+/=\\n]+?-----END ${kind}-----`).exec(text ?? '');
  return m ? `${m[0]}\n` : null;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** openssl's -subj with its separators escaped: `/O=system:masters/CN=m3`. */
export function subjectArg(c: { cn: string; o?: string }): string {
  const esc = (v: string) => v.replace(/([\\/+=,])/g, '\\$1');
  return `${c.o ? `/O=${esc(c.o)}` : ''}/CN=${esc(c.cn)}`;
}

/** The extensions the signer puts in a member certificate: never a CA, its usages, its names. */
export function extensionsOf(c: CertParams): string {
  const sans = [...c.dns.map((d) => `DNS:${d}`), ...c.ips.map((ip) => `IP:${ip}`)];
  return [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${c.usages.join(',')}`,
    ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
    '',
  ].join('\n');
}

/** On the member's host, under its lock: a key per role in the staging dir (made only where none is), and its CSR and public half printed. */
export function csrScript(staging: string, certs: CertParams[]): string {
  return [
    'umask 077',
    sh`mkdir -p ${staging}`,
    ...certs.flatMap((c) => {
      const key = stagedKey(staging, c.role);
      return [
        // Made beside and moved into place: a key file is whole or absent, whenever the script is cut off.
        sh`if [ -s ${key} ]; then echo ${`the key for ${c.role} made earlier by this run is kept: ${key}`};`,
        sh`else openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ${`${key}.medic-tmp`} </dev/null 2>/dev/null; mv ${`${key}.medic-tmp`} ${key}; echo ${`made a new key for ${c.role} on this host: ${key}`}; fi`,
        sh`echo ${`medic-file csr:${c.role}`}; openssl req -new -key ${key} -subj ${subjectArg(c)} </dev/null; echo medic-end`,
        sh`echo ${`medic-file staged-key:${c.role}`}; openssl pkey -in ${key} -pubout </dev/null; echo medic-end`,
      ];
    }),
  ].join('\n');
}

/**
 * On the signing master: the CSR's own signature checked, then signed with
 * the CA there (a random serial, nothing written on that host). Only the
 * certificate comes back.
 */
export function signScript(p: { caCert: string; caKey: string; days: number; what?: string }, c: CertParams, csrPem: string, serialHex: string): string {
  const what = p.what ?? 'etcd CA';
  return [
    'if ! command -v openssl >/dev/null 2>&1; then echo "openssl is not on this host\'s PATH: it cannot sign" >&2; exit 24; fi',
    sh`if [ ! -r ${p.caKey} ]; then echo ${`there is no ${what} key at ${p.caKey} on this host: it cannot sign`} >&2; exit 20; fi`,
    sh`if [ ! -r ${p.caCert} ]; then echo ${`there is no ${what} certificate at ${p.caCert} on this host`} >&2; exit 21; fi`,
    sh`csr=$(printf '%s' ${b64(csrPem)} | base64 -d)`,
    `if ! printf '%s\\n' "$csr" | openssl req -noout -verify >/dev/null 2>&1; then echo "the CSR's own signature does not verify: not signed" >&2; exit 22; fi`,
    sh`if crt=$(printf '%s\n' "$csr" | openssl x509 -req -CA ${p.caCert} -CAkey ${p.caKey} -set_serial ${`0x${serialHex}`} -days ${p.days} -sha256 -extfile <(printf '%s' ${b64(extensionsOf(c))} | base64 -d) 2>&1); then`,
    sh`  echo ${`medic-file cert:${c.role}`}; printf '%s\n' "$crt"; echo medic-end`,
    'else echo "openssl could not sign: $crt" >&2; exit 23; fi',
  ].join('\n');
}

/** `medic_same A B`: both files exist with the same bytes. */
const SAME = 'medic_same() { [ -f "$1" ] && [ -f "$2" ] && [ "$(sha256sum < "$1")" = "$(sha256sum < "$2")" ]; }';

/** Lines that put `path` aside to `aside` when it holds other bytes than `staged`, refusing to overwrite an earlier copy. */
function asideLines(path: string, aside: string, staged: string): string[] {
  return [
    sh`if [ -e ${path} ] && ! medic_same ${staged} ${path}; then`,
    sh`  if [ -e ${aside} ]; then echo both ${path} and ${aside} exist, refusing to overwrite the copy kept earlier >&2; exit 3; fi`,
    sh`  mv ${path} ${aside}; echo kept ${path} as ${aside}; fi`,
  ];
}

/** Lines that install a CA certificate at `caCert` from `pem` (staged at `staged` first), what was there moved aside; left alone when it is that one already. */
function caInstallLines(staged: string, caCert: string, caAside: string, pem: string, what: string): string[] {
  return [
    sh`printf '%s' ${b64(pem)} | base64 -d > ${`${staged}.medic-tmp`}; mv ${`${staged}.medic-tmp`} ${staged}`,
    sh`if medic_same ${staged} ${caCert}; then echo ${`the ${what} certificate is in place at ${caCert}`}; else`,
    sh`  mkdir -p ${dirname(caCert)}`,
    ...asideLines(caCert, caAside, staged),
    sh`  cp ${staged} ${`${caCert}.medic-tmp`}; chmod 644 ${`${caCert}.medic-tmp`}; mv ${`${caCert}.medic-tmp`} ${caCert}; echo ${`installed the ${what} certificate of the cluster at ${caCert}`}; fi`,
  ];
}

/**
 * On the member's host, under its lock: the CA certificate (when it differs)
 * and each signed certificate written into the staging dir, then installed
 * beside its key, what was there moved aside. A role whose files already are
 * the staged ones is left alone.
 */
export function installScript(p: { staging: string; caCert: string; caAside: string }, caPem: string | null, certs: { c: CertParams; pem: string }[], otherCas: OtherCaInstall[] = []): string {
  return [
    'umask 077',
    SAME,
    sh`mkdir -p ${p.staging}`,
    // The etcd CA's certificate when it differs, and another CA's (metric-ca.crt) the same way, staged under its own name.
    ...otherCas.flatMap((o) => caInstallLines(`${p.staging}/ca-${o.name}.crt`, o.caCert, o.caAside, o.pem, o.what)),
    ...(caPem ? caInstallLines(`${p.staging}/ca.crt`, p.caCert, p.caAside, caPem, 'etcd CA') : []),
    ...certs.flatMap(({ c, pem }) => {
      const sk = stagedKey(p.staging, c.role);
      const sc = stagedCert(p.staging, c.role);
      return [
        sh`printf '%s' ${b64(pem)} | base64 -d > ${`${sc}.medic-tmp`}; mv ${`${sc}.medic-tmp`} ${sc}`,
        sh`if [ ! -s ${sk} ]; then echo ${`the key ${sk} this certificate was signed for is gone: nothing installed for ${c.role}`} >&2; exit 6; fi`,
        sh`if medic_same ${sc} ${c.cert} && medic_same ${sk} ${c.key}; then echo ${`${c.role}: ${c.cert} and its key are installed already`}; else`,
        sh`  mkdir -p ${dirname(c.cert)} ${dirname(c.key)}`,
        ...asideLines(c.cert, c.certAside, sc),
        ...asideLines(c.key, c.keyAside, sk),
        // The key first: a certificate never stands beside a key it was not signed for.
        sh`  cp ${sk} ${`${c.key}.medic-tmp`}; chmod 600 ${`${c.key}.medic-tmp`}; mv ${`${c.key}.medic-tmp`} ${c.key}`,
        sh`  cp ${sc} ${`${c.cert}.medic-tmp`}; chmod 644 ${`${c.cert}.medic-tmp`}; mv ${`${c.cert}.medic-tmp`} ${c.cert}`,
        sh`  echo ${`${c.role}: installed ${c.cert} and ${c.key}`}; fi`,
      ];
    }),
  ].join('\n');
}

/** Another CA's certificate as the install puts it on the member's host. */
export interface OtherCaInstall {
  name: string;
  what: string;
  caCert: string;
  caAside: string;
  pem: string;
}

/** The files of a member's pki a look reads: the CA certificate (and any other CA's, as `ca:<name>`), each certificate and key in place and staged. */
export function pkiFiles(p: { caCert: string; staging?: string; cas?: { name: string; caCert: string }[] }, certs: { role: string; cert: string; key: string }[]): PkiFile[] {
  return [
    { label: 'ca', path: p.caCert, kind: 'cert' },
    ...(p.cas ?? []).map((o) => ({ label: `ca:${o.name}`, path: o.caCert, kind: 'cert' as const })),
    ...certs.flatMap((c) => [
      { label: `cert:${c.role}`, path: c.cert, kind: 'cert' as const },
      { label: `key:${c.role}`, path: c.key, kind: 'key' as const },
      ...(p.staging
        ? [
            { label: `staged-cert:${c.role}`, path: stagedCert(p.staging, c.role), kind: 'cert' as const },
            { label: `staged-key:${c.role}`, path: stagedKey(p.staging, c.role), kind: 'key' as const },
          ]
        : []),
    ]),
  ];
}

/** The CA that signs a certificate of the step's: its own (`ca`, by name), else the etcd CA. */
export function caOfCert(c: CertParams, etcdCaPem: string, otherPems: Record<string, string>): string {
  if (!c.ca) return etcdCaPem;
  const pem = otherPems[c.ca];
  if (!pem) throw new Error(`the ${c.ca} CA that signs ${c.role} was not read from the signing master`);
  return pem;
}

/** Whether two PEM certificates are the same certificate. */
function sameCert(a: string | undefined, b: string): boolean {
  try {
    return !!a && new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;
  } catch {
    return false;
  }
}

/** What each of a member's certificates needs, from a look at its host against the CA. */
export interface CertPlan {
  caInPlace: boolean;
  /** The other CAs (by name) whose certificate on the host is missing or another. */
  casMissing: string[];
  /** Valid where they are: kept. */
  inPlace: string[];
  /** A staged certificate of this run, valid for its staged key: installed without a new signing. */
  install: { c: CertParams; pem: string }[];
  /** Signed now (for the staged key where this run made one, else a new one). */
  sign: CertParams[];
  /** Why each of those is not in place, for the output. */
  why: string[];
}

/**
 * `address`: the member's host; a certificate in place that names it is kept
 * (see reachedAt); one staged by this run must carry every name it was issued for.
 */
export function certPlanOf(look: Map<string, string>, caPemEtcd: string, certs: CertParams[], address: string, now: Date, otherPems: Record<string, string> = {}, cas: { name: string; what: string }[] = []): CertPlan {
  const casMissing = Object.entries(otherPems).flatMap(([name, pem]) => (sameCert(look.get(`ca:${name}`), pem) ? [] : [name]));
  const plan: CertPlan = { caInPlace: sameCert(look.get('ca'), caPemEtcd), casMissing, inPlace: [], install: [], sign: [], why: [] };
  for (const c of certs) {
    const want = wantOf(c, cas);
    // A certificate another CA signs (the metric pair) is judged against that CA, never the etcd CA.
    const caPem = caOfCert(c, caPemEtcd, otherPems);
    const problem = memberCertProblem(pemBlock(look.get(`cert:${c.role}`), 'CERTIFICATE'), look.get(`key:${c.role}`) ?? null, caPem, want, now, reachedAt(address, want));
    if (!problem) {
      plan.inPlace.push(c.role);
      continue;
    }
    plan.why.push(`${c.role}: ${problem}`);
    const staged = pemBlock(look.get(`staged-cert:${c.role}`), 'CERTIFICATE');
    if (staged && !memberCertProblem(staged, look.get(`staged-key:${c.role}`) ?? null, caPem, want, now)) plan.install.push({ c, pem: staged });
    else plan.sign.push(c);
  }
  return plan;
}

/**
 * Why a CSR the member's host printed is not the one to send to the CA's
 * master (null: it is): its subject exactly the planned one (the signer copies
 * it into the certificate), signed by its own key, for the key staged there
 * (`keyPublic`, as the host printed it), an RSA key of 2048 bits or more as the
 * step makes them. What the host prints is checked, not trusted.
 */
export function csrProblem(csrPem: string, keyPublic: string, c: CertParams): string | null {
  const decoded = decodePkcs10Pem(csrPem);
  if (!decoded.ok) return decoded.error;
  const { subject, signatureValid, key, spki } = decoded.csr;
  if (subject.text !== subjectText(c)) return `it names ${subject.text || 'nobody'}, not ${subjectText(c)}`;
  if (signatureValid !== true) return 'its own signature does not verify';
  if (key.type !== 'rsa' || (key.bits ?? 0) < 2048) return `its key is ${key.text}, not RSA 2048 as made on the host`;
  try {
    if (spki !== createPublicKey(keyPublic).export({ type: 'spki', format: 'der' }).toString('base64')) return 'it is not for the key staged on the host';
  } catch {
    return 'the staged key\'s public half is not one Node reads';
  }
  return null;
}

/**
 * Why a certificate the signing master gave back is not the one to install
 * (null: it is): signed by the cluster's CA, valid now, for the staged key,
 * and exactly what was asked (subject, names, usages, not a CA, the serial sent,
 * given `days`: valid from now for those days and no longer).
 */
export function signedCertProblem(certPem: string, keyPublic: string, caPem: string, c: CertParams, serialHex: string, now: Date, days?: number): string | null {
  try {
    if (!certMatchesKey(certPem, keyPublic)) return `it is not for the key staged on the member's host`;
    return memberCertProblem(certPem, keyPublic, caPem, wantOf(c), now) ?? issuedCertProblem(certPem, wantOf(c), serialHex, days === undefined ? undefined : { days, now });
  } catch (err) {
    return `it is not a certificate Node reads (${(err as Error).message})`;
  }
}

/** A certificate's SHA-256 fingerprint (as node:crypto writes it); null for no PEM or one that does not parse. */
function fingerprintOf(pem: string | null): string | null {
  if (!pem) return null;
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch {
    return null;
  }
}

/** A master that may sign: its name and where its etcd CA certificate and key are (and those of the step's other CAs). */
export interface SignerPlace {
  name: string;
  caCert: string;
  caKey: string;
  cas?: { name: string; caCert: string; caKey: string }[];
}

/** The planned signer first, then the step's fallbacks (the other surviving masters), each once, never the member itself. */
export function signerPlaces(p: Pick<IssueCerts['params'], 'name' | 'signer' | 'signerCaCert' | 'signerCaKey' | 'fallbackSigners' | 'signerCas'>): SignerPlace[] {
  const all: SignerPlace[] = [{ name: p.signer, caCert: p.signerCaCert, caKey: p.signerCaKey, ...(p.signerCas ? { cas: p.signerCas } : {}) }, ...(p.fallbackSigners ?? [])];
  return all.filter((s, i) => s.name !== p.name && all.findIndex((x) => x.name === s.name) === i);
}

/**
 * A line that prints `<label> present` when the CA key is there, readable and
 * the key of the CA certificate beside it (compared on the master by their
 * public halves), else `<label> other | unreadable | absent`. A key that is not
 * the certificate's signs certificates nobody trusts: that master is passed
 * over before a CSR is sent to it. Only a word leaves the master.
 */
function caKeyLine(label: string, caCert: string, caKey: string): string {
  return sh`if [ -r ${caKey} ] && [ -s ${caKey} ]; then kp=$(openssl pkey -in ${caKey} -pubout -passin pass: </dev/null 2>/dev/null) || kp=; cpub=$(openssl x509 -in ${caCert} -noout -pubkey </dev/null 2>/dev/null) || cpub=; if [ -z "$kp" ]; then echo ${`${label} unreadable`}; elif [ "$kp" != "$cpub" ]; then echo ${`${label} other`}; else echo ${`${label} present`}; fi; elif [ -e ${caKey} ]; then echo ${`${label} unreadable`}; else echo ${`${label} absent`}; fi`;
}

/** On a master that may sign: whether openssl is there, its CA certificate printed, and whether its CA key is there, readable and that CA's (the key itself never printed). */
export function signerLookScript(s: SignerPlace): string {
  return [
    // The signing runs openssl there: a master without it is passed over, not sent a CSR it cannot sign.
    'if ! command -v openssl >/dev/null 2>&1; then echo medic-openssl absent; fi',
    ...pkiLookLines([{ label: 'ca', path: s.caCert, kind: 'cert' }]),
    caKeyLine('medic-ca-key', s.caCert, s.caKey),
    ...(s.cas ?? []).flatMap((o) => [...pkiLookLines([{ label: `ca:${o.name}`, path: o.caCert, kind: 'cert' }]), caKeyLine(`medic-ca-key:${o.name}`, o.caCert, o.caKey)]),
  ].join('\n');
}

/** What a key line of signerLookScript says, as words for the output. */
function keyWords(word: string | undefined, what: string, caKey: string): string {
  if (word === 'other') return `the ${what} key at ${caKey} is not the key of its CA certificate`;
  return word === 'unreadable' ? `the ${what} key at ${caKey} is not readable` : `no ${what} key at ${caKey}`;
}

/**
 * Why a master cannot sign (null: it can), from what signerLookScript printed:
 * no CA certificate, another CA than the planned one, no openssl, no CA key
 * or one that is not the CA certificate's. Pure.
 */
export function signerProblem(out: string, s: SignerPlace, caSha256: string, cas: { name: string; what: string; caSha256: string }[] = []): string | null {
  const files = parsePkiLook(out);
  const fingerprint = (label: string) => fingerprintOf(pemBlock(files.get(label), 'CERTIFICATE'));
  const seen = fingerprint('ca');
  if (!seen) return `no etcd CA certificate at ${s.caCert}`;
  if (seen !== caSha256) return `its CA at ${s.caCert} is another one (sha256 ${seen.slice(0, 23)}…) than the one planned against`;
  if (/^medic-openssl absent$/m.test(out)) return 'openssl is not on its PATH, it cannot sign';
  const key = /^medic-ca-key (\w+)$/m.exec(out)?.[1];
  if (key !== 'present') return keyWords(key, 'etcd CA', s.caKey);
  // Every other CA the step signs with must be here too: one master signs the whole set.
  for (const o of cas) {
    const place = s.cas?.find((x) => x.name === o.name);
    if (!place) return `where it keeps the ${o.what} was not planned`;
    const other = fingerprint(`ca:${o.name}`);
    if (!other) return `no ${o.what} certificate at ${place.caCert}`;
    if (other !== o.caSha256) return `its ${o.what} at ${place.caCert} is another one (sha256 ${other.slice(0, 23)}…) than the one planned against`;
    const k = new RegExp(`^medic-ca-key:${o.name} (\\w+)$`, 'm').exec(out)?.[1];
    if (k !== 'present') return keyWords(k, o.what, place.caKey);
  }
  return null;
}

/**
 * The master that signs: the planned one if it still can, else the first of
 * the other surviving masters that can (the CA key is often on one master
 * only, or the planned one lost it or stopped answering since the plan). Each
 * is asked only for its CA certificate and whether its key is there; the key
 * never leaves it. None can: refused, naming every place looked at.
 */
export async function pickSigner(ctx: HostStepContext, p: IssueCerts['params'], signal?: AbortSignal): Promise<{ signer: SignerPlace; caPem: string; otherPems: Record<string, string>; passedOver: string[] }> {
  const passedOver: string[] = [];
  for (const s of signerPlaces(p)) {
    let out: string;
    try {
      out = await runScript(ctx.target(s.name), signerLookScript(s), { signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      passedOver.push(`${s.name}: could not be asked (${(err as Error).message.slice(0, 200)})`);
      continue;
    }
    const problem = signerProblem(out, s, p.caSha256, p.cas);
    if (problem) {
      passedOver.push(`${s.name}: ${problem}`);
      continue;
    }
    const files = parsePkiLook(out);
    const otherPems = Object.fromEntries((p.cas ?? []).map((o) => [o.name, pemBlock(files.get(`ca:${o.name}`), 'CERTIFICATE')!]));
    return { signer: s, caPem: pemBlock(files.get('ca'), 'CERTIFICATE')!, otherPems, passedOver };
  }
  const others = (p.cas ?? []).map((o) => ` and the ${o.what}'s key (sha256 ${o.caSha256.slice(0, 23)}…)`).join('');
  throw new Error(
    `no surviving master can sign ${p.name}'s etcd certificates: looked on ${passedOver.join('; ')}. Nothing was issued and nothing changed on ${p.name}. Put the cluster's etcd CA key (the one of sha256 ${p.caSha256.slice(0, 23)}…)${others} back at ${others ? 'their paths on one of them (the same master)' : 'its path on one of them'}, or issue ${p.name}'s certificates by hand from it, then approve again.`,
  );
}

async function lookAtPki(target: SshTarget, files: PkiFile[], signal?: AbortSignal): Promise<Map<string, string>> {
  return parsePkiLook(await runScript(target, pkiLookLines(files).join('\n'), { signal }));
}

/** The step: see the comment at the top of this file. */
export async function issueCerts(ctx: HostStepContext, step: IssueCerts, signal?: AbortSignal): Promise<StepResult> {
  const p = step.params;
  const target = ctx.target(step.host!);
  // The cluster's CA is the one the signing master holds: what every member trusts and what signs.
  const picked = await pickSigner(ctx, p, signal);
  const { caPem, otherPems } = picked;
  const signerName = picked.signer.name;
  const signer = ctx.target(signerName);
  const files = pkiFiles(p, p.certs);
  const plan = certPlanOf(await lookAtPki(target, files, signal), caPem, p.certs, p.address, new Date(), otherPems, p.cas);
  if (plan.caInPlace && !plan.casMissing.length && !plan.install.length && !plan.sign.length) {
    return { skipped: true, summary: `${p.name}'s certificates (${plan.inPlace.join(', ')}) are in place and valid, signed by the cluster's etcd CA: nothing issued` };
  }

  const lock = memberLockOf(step, lockWaitSeconds(ctx.cluster));
  const timeoutMs = (lock.waitSeconds + 120) * 1000;
  const lines: string[] = [...plan.why, ...(picked.passedOver.length ? [`signer: ${signerName}, after ${picked.passedOver.join('; ')}`] : [])];
  const signed: { c: CertParams; pem: string }[] = [];
  if (plan.sign.length) {
    const out = await runScript(target, underMemberLock(lock, csrScript(p.staging, plan.sign)), { signal, timeoutMs });
    lines.push(...out.split('\n').filter((l) => /^(made a new key|the key for)/.test(l)));
    const made = parsePkiLook(out);
    for (const c of plan.sign) {
      const csr = pemBlock(made.get(`csr:${c.role}`), 'CERTIFICATE REQUEST');
      const pub = pemBlock(made.get(`staged-key:${c.role}`), 'PUBLIC KEY');
      if (!csr || !pub) throw new Error(`${p.name} gave no CSR for ${c.role}: nothing was signed`);
      // The request is read before it goes to the CA's master: it must name what the plan says, signed by its own key.
      const wrong = csrProblem(csr, pub, c);
      if (wrong) throw new Error(`the CSR ${p.name} made for ${c.role} is not the one planned (${wrong}): nothing was signed`);
      const serial = randomBytes(16).toString('hex');
      // Each certificate signed by its own CA on the signer: the metric pair by the metric CA there, the rest by the etcd CA.
      const other = c.ca ? { ...picked.signer.cas!.find((x) => x.name === c.ca)!, what: p.cas!.find((x) => x.name === c.ca)!.what } : null;
      const ca = other ? { caCert: other.caCert, caKey: other.caKey, what: other.what } : { caCert: picked.signer.caCert, caKey: picked.signer.caKey };
      const out2 = await runScript(signer, signScript({ ...ca, days: p.days }, c, csr, serial), { signal });
      const pem = pemBlock(parsePkiLook(out2).get(`cert:${c.role}`), 'CERTIFICATE');
      if (!pem) throw new Error(`${signerName} gave back no certificate for ${p.name}'s ${c.role}: ${out2.slice(0, 300)}`);
      const problem = signedCertProblem(pem, pub, caOfCert(c, caPem, otherPems), c, serial, new Date(), p.days);
      if (problem) throw new Error(`the certificate ${signerName} signed for ${c.role} is not right (${problem}): not installed`);
      signed.push({ c, pem });
      lines.push(`${c.role}: signed on ${signerName} by the ${other?.what ?? 'etcd CA'}, serial ${new X509Certificate(pem).serialNumber.toLowerCase()}`);
      killAtFault('mid-cert'); // tests only: the worker dies with a certificate signed and not yet on the host
    }
  }
  if (signed.length) killAtFault('certs-signed'); // tests only: the worker dies with every certificate signed, nothing installed yet
  const otherInstalls = (p.cas ?? []).filter((o) => plan.casMissing.includes(o.name)).map((o) => ({ ...o, pem: otherPems[o.name]! }));
  const out = await runScript(target, underMemberLock(lock, installScript(p, plan.caInPlace ? null : caPem, [...plan.install, ...signed], otherInstalls)), { signal, timeoutMs });
  lines.push(out);

  // Looked at again: what is on the host now is what the member starts with.
  const after = certPlanOf(await lookAtPki(target, pkiFiles({ caCert: p.caCert, cas: p.cas }, p.certs), signal), caPem, p.certs, p.address, new Date(), otherPems, p.cas);
  if (!after.caInPlace || after.casMissing.length || after.inPlace.length !== p.certs.length) {
    const casWrong = (p.cas ?? []).filter((o) => after.casMissing.includes(o.name)).map((o) => `${o.caCert} is not the cluster's ${o.what}; `).join('');
    throw new Error(`after installing, ${p.name}'s certificates are still not right: ${after.caInPlace ? '' : `${p.caCert} is not the cluster's CA; `}${casWrong}${after.why.join('; ')}`);
  }
  const installed = [...plan.install, ...signed].map((x) => x.c.role);
  return {
    summary: `${installed.length ? `issued ${installed.join(', ')} for ${p.name}${signed.length ? ` (signed on ${signerName}${picked.passedOver.length ? `, not ${p.signer} as planned: ${picked.passedOver[0]}` : ''}; the CA key stayed there, the keys on ${p.name})` : ' (signed earlier in this run)'}` : `the cluster's CA certificate installed on ${p.name}`}${otherInstalls.length ? `; ${otherInstalls.map((o) => `the ${o.what} certificate installed at ${o.caCert}`).join(', ')}` : ''}${plan.inPlace.length ? `; ${plan.inPlace.join(', ')} already valid, kept` : ''}; anything replaced kept in ${p.asideDir}`,
    output: lines.join('\n'),
  };
}
