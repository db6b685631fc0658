import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberCertProblem, reachedAt } from '../../src/certs/member-cert.js';
import { makeCa, makeCert } from '../../src/lab/certs.js';
import { memberSans } from '../../src/platform/member-pki.js';
import { certPlanOf, csrScript, extensionsOf, installScript, parsePkiLook, pemBlock, pkiFiles, pkiLookLines, signScript, subjectArg, wantOf, type CertParams } from '../../src/worker/steps/cert-steps.js';

const dir = mkdtempSync(join(tmpdir(), 'medic-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A host script run here as a step runs it there: bash, `set -euo pipefail`. */
function bash(script: string): { code: number; out: string } {
  const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const host = '10.0.0.3';
const pki = join(dir, 'pki');
const aside = join(dir, 'aside');
const staging = join(aside, 'certs-r-1');
const certOf = (role: string): CertParams => ({
  role,
  cert: join(pki, `${role}.crt`),
  key: join(pki, `${role}.key`),
  certAside: join(aside, `${role}.crt.r-1`),
  keyAside: join(aside, `${role}.key.r-1`),
  cn: 'm3',
  usages: ['serverAuth', 'clientAuth'],
  ...memberSans({ name: 'm3', host }),
});
const certs = [certOf('peer'), certOf('server')];
const place = { staging, caCert: join(pki, 'ca.crt'), caAside: join(aside, 'ca.crt.r-1') };
let ca: { cert: string; key: string };
let caPem: string;

const look = () => {
  const r = bash(pkiLookLines(pkiFiles(place, certs)).join('\n'));
  expect(r.code).toBe(0);
  return parsePkiLook(r.out);
};
/** The member's side then the CA's, as the step does them: CSRs made here, signed with the CA, the certificates back. */
function issue(which: CertParams[]): { c: CertParams; pem: string }[] {
  const made = bash(csrScript(staging, which));
  expect(made.code, made.out).toBe(0);
  const files = parsePkiLook(made.out);
  return which.map((c, i) => {
    const signed = bash(signScript({ caCert: ca.cert, caKey: ca.key, days: 365 }, c, pemBlock(files.get(`csr:${c.role}`), 'CERTIFICATE REQUEST')!, `0a${i}`));
    expect(signed.code, signed.out).toBe(0);
    return { c, pem: pemBlock(parsePkiLook(signed.out).get(`cert:${c.role}`), 'CERTIFICATE')! };
  });
}

beforeAll(async () => {
  ca = await makeCa(join(dir, 'ca'));
  caPem = readFileSync(ca.cert, 'utf8');
});

describe('issuing a member certificate with openssl, as the step does on the hosts', () => {
  it('escapes what openssl reads specially in a subject, and asks for exactly the usages and names', () => {
    expect(subjectArg({ cn: 'kube-etcd-healthcheck-client', o: 'system:masters' })).toBe('/O=system:masters/CN=kube-etcd-healthcheck-client');
    expect(subjectArg({ cn: 'a/b=c' })).toBe('/CN=a\\/b\\=c');
    expect(extensionsOf(certOf('peer'))).toBe(
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:m3,DNS:localhost,IP:10.0.0.3,IP:127.0.0.1,IP:::1\n',
    );
  });

  it('a wiped host: everything to sign; signed, installed, then in place; a second install changes nothing', () => {
    let plan = certPlanOf(look(), caPem, certs, host, new Date());
    expect([plan.caInPlace, plan.inPlace, plan.install, plan.sign.map((c) => c.role)]).toEqual([false, [], [], ['peer', 'server']]);
    const signed = issue(plan.sign);
    for (const { c, pem } of signed) expect(memberCertProblem(pem, null, caPem, wantOf(c), new Date(), { dns: [], ips: [] })).toMatch(/^no key/);
    const first = bash(installScript(place, caPem, signed));
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`peer: installed ${certs[0]!.cert}`);
    plan = certPlanOf(look(), caPem, certs, host, new Date());
    expect([plan.caInPlace, plan.inPlace, plan.sign.length, plan.install.length]).toEqual([true, ['peer', 'server'], 0, 0]);
    // Every name kubeadm gives, not just the address.
    const l = look();
    expect(memberCertProblem(pemBlock(l.get('cert:peer'), 'CERTIFICATE'), l.get('key:peer')!, caPem, wantOf(certs[0]!), new Date())).toBeNull();
    const again = bash(installScript(place, caPem, signed));
    expect(again.out).toContain('peer: ');
    expect(again.out).toMatch(/are installed already/);
    expect(existsSync(certs[0]!.certAside)).toBe(false);
  });

  it('a second CSR run keeps the key this run made; a key made for a staged certificate is never replaced under it', () => {
    const before = readFileSync(join(staging, 'peer.key'), 'utf8');
    const again = bash(csrScript(staging, [certs[0]!]));
    expect(again.out).toContain('the key for peer made earlier by this run is kept');
    expect(readFileSync(join(staging, 'peer.key'), 'utf8')).toBe(before);
  });

  it('what a host already has: a stranger\'s certificate is moved aside and replaced; a staged valid one installs without a new signing', async () => {
    const stranger = await makeCa(join(dir, 'stranger'), 'stranger-ca');
    const theirs = await makeCert(join(dir, 'stranger'), 'm3', stranger, [host]);
    writeFileSync(certs[0]!.cert, readFileSync(theirs.cert));
    writeFileSync(certs[0]!.key, readFileSync(theirs.key));
    const plan = certPlanOf(look(), caPem, certs, host, new Date());
    expect(plan.why[0]).toMatch(/^peer: .*peer\.crt is not signed by the cluster's etcd CA \(issuer CN=stranger-ca/);
    // The staged certificate of this run is still valid for the staged key: installed, not signed again.
    expect([plan.install.map((x) => x.c.role), plan.sign.length, plan.inPlace]).toEqual([['peer'], 0, ['server']]);
    const out = bash(installScript(place, null, plan.install));
    expect(out.code, out.out).toBe(0);
    expect(readFileSync(certs[0]!.certAside, 'utf8')).toBe(readFileSync(theirs.cert, 'utf8'));
    expect(readFileSync(certs[0]!.keyAside, 'utf8')).toBe(readFileSync(theirs.key, 'utf8'));
    expect(readFileSync(certs[0]!.cert, 'utf8')).toBe(readFileSync(join(staging, 'peer.crt'), 'utf8'));
    // A third file at the path while a copy is already kept aside: refused, nothing overwritten.
    writeFileSync(certs[0]!.cert, 'someone else\n');
    const refused = bash(installScript(place, null, plan.install));
    expect(refused.code).toBe(3);
    expect(refused.out).toMatch(/refusing to overwrite the copy kept earlier/);
    expect(readFileSync(certs[0]!.certAside, 'utf8')).toBe(readFileSync(theirs.cert, 'utf8'));
  });

  it('a certificate in place that does not name the member\'s address, or is not its key\'s pair, is not kept', async () => {
    const elsewhere = await makeCert(join(dir, 'elsewhere'), 'm3', ca, ['10.9.9.9']);
    const want = wantOf(certs[1]!);
    const pub = (key: string) => bash(`openssl pkey -in ${key} -pubout`).out;
    expect(memberCertProblem(readFileSync(elsewhere.cert, 'utf8'), pub(elsewhere.key), caPem, want, new Date(), reachedAt(host, want))).toMatch(/is not valid for IP:10\.0\.0\.3/);
    const other = await makeCert(join(dir, 'other'), 'm3', ca, [host]);
    expect(memberCertProblem(readFileSync(other.cert, 'utf8'), pub(elsewhere.key), caPem, want, new Date(), reachedAt(host, want))).toMatch(/is not the pair of/);
    // A certificate made by other tools, naming the address only, is kept (the lab's, openshift-ansible's).
    expect(memberCertProblem(readFileSync(other.cert, 'utf8'), pub(other.key), caPem, want, new Date(), reachedAt(host, want))).toBeNull();
    expect(memberCertProblem(readFileSync(other.cert, 'utf8'), pub(other.key), caPem, want, new Date('2030-01-01'), reachedAt(host, want))).toMatch(/ends /);
  });

  it('the signer refuses a CSR whose own signature does not verify, and a host without the CA key', () => {
    const csr = pemBlock(bash(csrScript(join(dir, 'st2'), [certs[0]!])).out.split('medic-file csr:peer')[1], 'CERTIFICATE REQUEST')!;
    // One character of the signature changed.
    const lines = csr.trim().split('\n');
    const mid = lines[lines.length - 3]!;
    lines[lines.length - 3] = `${mid.slice(0, 10)}${mid[10] === 'A' ? 'B' : 'A'}${mid.slice(11)}`;
    const bad = bash(signScript({ caCert: ca.cert, caKey: ca.key, days: 1 }, certs[0]!, `${lines.join('\n')}\n`, '01'));
    expect(bad.code).not.toBe(0);
    const noKey = bash(signScript({ caCert: ca.cert, caKey: join(dir, 'nope.key'), days: 1 }, certs[0]!, csr, '01'));
    expect([noKey.code, noKey.out.trim()]).toEqual([20, `there is no etcd CA key at ${join(dir, 'nope.key')} on this host: it cannot sign`]);
  });
});
