import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberCertProblem, reachedAt } from '../../src/certs/member-cert.js';
import { makeCa, makeCert } from '../../src/lab/certs.js';
import { memberSans } from '../../src/platform/member-pki.js';
import { certPlanOf, csrProblem, csrScript, extensionsOf, signedCertProblem, installScript, parsePkiLook, pemBlock, pkiFiles, pkiLookLines, signScript, subjectArg, wantOf, type CertParams } from '../../src/worker/steps/cert-steps.js';

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

describe('what the member\'s host and the signing master hand back is checked, not trusted', () => {
  const c = certOf('peer');
  const tampered = join(dir, 'tampered');
  const pubOf = (key: string) => bash(`openssl pkey -in ${key} -pubout`).out;
  /** A CSR as a hostile rebuilt host could print it: its own subject and extensions, its own key. */
  const csrWith = (name: string, subj: string, opts: string[] = [], bits = 2048) => {
    const key = join(tampered, `${name}.key`);
    const r = bash(`mkdir -p ${tampered} && openssl req -new -newkey rsa:${bits} -nodes -keyout ${key} -subj '${subj}' ${opts.join(' ')} 2>/dev/null`);
    expect(r.code, r.out).toBe(0);
    return { csr: pemBlock(r.out, 'CERTIFICATE REQUEST')!, pub: pubOf(key), key };
  };

  it('a CSR with more in its subject than the plan, a weak key, or another key than the staged one is not sent to the CA', () => {
    const ok = csrWith('ok', '/CN=m3');
    expect(csrProblem(ok.csr, ok.pub, c)).toBeNull();
    // The fault: the host adds an OU (the signer copies the subject whole) or an O (Kubernetes reads O as a group).
    expect(csrProblem(csrWith('ou', '/CN=m3/OU=ops').csr, ok.pub, c)).toMatch(/it names CN=m3, OU=ops, not CN=m3/);
    const masters = csrWith('o', '/O=system:masters/CN=m3');
    expect(csrProblem(masters.csr, masters.pub, c)).toMatch(/it names O=system:masters, CN=m3, not CN=m3/);
    const weak = csrWith('weak', '/CN=m3', [], 1024);
    expect(csrProblem(weak.csr, weak.pub, c)).toBe('its key is RSA 1024, not RSA 2048 as made on the host');
    // A request for a key other than the one the host says it staged.
    expect(csrProblem(ok.csr, masters.pub, c)).toBe('it is not for the key staged on the host');
  });

  it('the signer sets the extensions itself: a request asking to be a CA for other names gets exactly the planned ones', () => {
    const hostile = csrWith('hostile', '/CN=m3', ['-addext', "'basicConstraints=critical,CA:TRUE'", '-addext', "'subjectAltName=IP:10.0.0.1,DNS:m1'"]);
    expect(csrProblem(hostile.csr, hostile.pub, c)).toBeNull();
    const signed = bash(signScript({ caCert: ca.cert, caKey: ca.key, days: 30 }, c, hostile.csr, 'c0ffee'));
    expect(signed.code, signed.out).toBe(0);
    const pem = pemBlock(parsePkiLook(signed.out).get('cert:peer'), 'CERTIFICATE')!;
    expect(signedCertProblem(pem, hostile.pub, caPem, c, 'c0ffee', new Date())).toBeNull();
    // Not the serial the worker sent: an older certificate handed back.
    expect(signedCertProblem(pem, hostile.pub, caPem, c, 'c0ffef', new Date())).toBe('its serial is c0ffee, not c0ffef as sent');
  });

  it('a certificate back from the signer that is a CA, names more, or is for another key is not installed', () => {
    const hostile = csrWith('hostile2', '/CN=m3');
    const csrFile = join(tampered, 'hostile2.csr');
    writeFileSync(csrFile, hostile.csr);
    const signWith = (ext: string) => {
      writeFileSync(join(tampered, 'ext'), ext);
      const r = bash(`openssl x509 -req -in ${csrFile} -CA ${ca.cert} -CAkey ${ca.key} -set_serial 0x0b -days 30 -extfile ${join(tampered, 'ext')} 2>/dev/null`);
      expect(r.code, r.out).toBe(0);
      return pemBlock(r.out, 'CERTIFICATE')!;
    };
    const sans = 'subjectAltName=DNS:m3,DNS:localhost,IP:10.0.0.3,IP:127.0.0.1,IP:::1';
    // The fault: a signing master whose openssl honours other extensions than the worker's file.
    const asCa = signWith(`basicConstraints=critical,CA:TRUE\nextendedKeyUsage=serverAuth,clientAuth\n${sans}\n`);
    // The checks the step made before: CA, validity, names, usages, key: all pass for a CA certificate.
    expect(memberCertProblem(asCa, hostile.pub, caPem, wantOf(c), new Date())).toBeNull();
    expect(signedCertProblem(asCa, hostile.pub, caPem, c, '0b', new Date())).toBe('it is a CA certificate');
    const more = signWith(`basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n${sans},IP:10.0.0.1\n`);
    expect(memberCertProblem(more, hostile.pub, caPem, wantOf(c), new Date())).toBeNull();
    expect(signedCertProblem(more, hostile.pub, caPem, c, '0b', new Date())).toBe('it is also valid for IP:10.0.0.1, which the plan does not name');
    const codeSigning = signWith(`basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth,codeSigning\n${sans}\n`);
    expect(signedCertProblem(codeSigning, hostile.pub, caPem, c, '0b', new Date())).toMatch(/^it has usages the plan does not name \(1\.3\.6\.1\.5\.5\.7\.3\.3\)$/);
    const other = csrWith('other', '/CN=m3');
    expect(signedCertProblem(more, other.pub, caPem, c, '0b', new Date())).toBe("it is not for the key staged on the member's host");
  });

  it('a certificate back from the signer that lives longer than the days the plan asked, or was made days before, is not installed', () => {
    const req = csrWith('validity', '/CN=m3');
    const signed = bash(signScript({ caCert: ca.cert, caKey: ca.key, days: 30 }, c, req.csr, '0d'));
    expect(signed.code, signed.out).toBe(0);
    const asked = pemBlock(parsePkiLook(signed.out).get('cert:peer'), 'CERTIFICATE')!;
    expect(signedCertProblem(asked, req.pub, caPem, c, '0d', new Date(), 30)).toBeNull();
    // The fault: a signing master whose openssl is told 10 years, not the 30 days sent.
    const csrFile = join(tampered, 'validity.csr');
    writeFileSync(csrFile, req.csr);
    writeFileSync(join(tampered, 'ext-validity'), extensionsOf(c));
    const r = bash(`openssl x509 -req -in ${csrFile} -CA ${ca.cert} -CAkey ${ca.key} -set_serial 0x0d -days 3650 -extfile ${join(tampered, 'ext-validity')} 2>/dev/null`);
    expect(r.code, r.out).toBe(0);
    const long = pemBlock(r.out, 'CERTIFICATE')!;
    expect(signedCertProblem(long, req.pub, caPem, c, '0d', new Date(), 30)).toMatch(/^it is valid until \d{4}-\d\d-\d\dT[\d:.]+Z, longer than the 30 days asked$/);
    // A certificate made two days before this signing (handed back again with the serial guessed): judged two days later.
    expect(signedCertProblem(asked, req.pub, caPem, c, '0d', new Date(Date.now() + 2 * 86_400_000), 30)).toMatch(/^it is dated back to \d{4}-/);
  });
});
