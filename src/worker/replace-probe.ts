import { X509Certificate } from 'node:crypto';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { memberCertProblem, reachedAt } from '../certs/member-cert.js';
import { otherCaOn, otherCasOf, platformOf } from '../platform/index.js';
import type { PeerLook, ReplaceHosts, TargetLook } from '../runbook/rebuilt-host.js';
import type { StatusReport } from '../status/assess.js';
import { findMember } from '../status/members.js';
import { sshExec } from '../ssh/exec.js';
import { quoteScript, sh } from '../ssh/shell.js';
import { sshTargetOf } from './ssh-target.js';
import { parsePkiLook, pemBlock, pkiFiles, pkiLookLines } from './steps/cert-steps.js';
import { environmentLookLines, manifestLookLines, parseClueLook, pkiDirLookLines } from './pki-look.js';
import { environmentFileOf } from '../platform/ocp4-certs.js';

/** The PEM when it is a certificate Node reads, else null. */
function parsedCert(pem: string | null): string | null {
  if (!pem) return null;
  try {
    new X509Certificate(pem);
    return pem;
  } catch {
    return null;
  }
}

/** The inventory's member that `/etcd replace <target>` names (by name, hex ID or host); undefined when none. */
export function memberOfTarget(cluster: ClusterConfig, report: StatusReport, target: string): MemberConfig | undefined {
  const live = findMember(report.members, target.toLowerCase());
  return cluster.members.find((m) => m.name === (live?.name ?? target.toLowerCase()) || m.host === target.toLowerCase());
}

/** One read-only script on a host; its stdout, or null when the host cannot be reached or the script fails. */
async function look(m: MemberConfig, lines: string[]): Promise<string | null> {
  try {
    const r = await sshExec(sshTargetOf(m), `bash -c ${quoteScript(['set -uo pipefail', ...lines].join('\n'))}`, { connectTimeoutMs: 5000, commandTimeoutMs: 30_000, maxOutputBytes: 256 * 1024 });
    return r.code === 0 && !r.truncated ? r.stdout : null;
  } catch {
    return null;
  }
}

/**
 * Before a replace, looks (read only) at the failed member's host and at each
 * healthy peer's: is the member's config there, are its certificates signed by
 * the cluster's etcd CA for its names (keys judged by their public half only),
 * and which peer has a config to lend and the CA key to sign with. A host that
 * cannot be looked at is left out: the plan's readiness check names it.
 */
export async function probeForReplace(cluster: ClusterConfig, report: StatusReport, target: string): Promise<ReplaceHosts | undefined> {
  const conf = memberOfTarget(cluster, report, target);
  if (!conf) return undefined;
  const platform = platformOf(cluster);
  // Voters only: a learner's config and CA are not what the cluster runs on (the planner asks only voters too).
  const healthy = report.members.filter((r) => r.name !== conf.name && !r.learner && r.reachable && r.status && r.status.leader !== '0');
  const peers = healthy.flatMap((r) => cluster.members.filter((m) => m.name === r.name));

  const discovers = platform.pkiOnHost !== undefined;
  const confPaths = platform.paths(conf);
  const targetFirst = look(conf, [
    sh`if [ -e ${confPaths.config} ]; then echo config=1; else echo config=0; fi`,
    'if command -v openssl >/dev/null 2>&1; then echo openssl=1; else echo openssl=0; fi',
    ...(discovers ? [...manifestLookLines(confPaths.config), ...pkiDirLookLines(confPaths.pkiDir)] : pkiLookLines(pkiFiles(platform.pki(conf), platform.pki(conf).certs))),
  ]);
  const peerOuts = peers.map(async (m) => {
    const pki = platform.pki(m);
    const out = await look(m, [
      sh`if [ -e ${platform.paths(m).config} ]; then echo config=1; else echo config=0; fi`,
      sh`if [ -r ${pki.caKey} ]; then echo cakey=1; else echo cakey=0; fi`,
      // The signing runs openssl there: a master without it is not planned to sign.
      'if command -v openssl >/dev/null 2>&1; then echo openssl=1; else echo openssl=0; fi',
      ...pki.certs.map((c) => sh`if [ -f ${c.cert} ]; then echo ${`role=${c.role}`}; fi`),
      ...pkiLookLines([{ label: 'ca', path: pki.caCert, kind: 'cert' }]),
      // A rebuilt master's manifest is built from a peer's: the certificate paths it will run with are that one's.
      ...(discovers ? manifestLookLines(platform.paths(m).config) : []),
    ]);
    if (out === null) return null;
    const ca = parsedCert(pemBlock(parsePkiLook(out).get('ca'), 'CERTIFICATE'));
    const peer: PeerLook = { name: m.name, hasConfig: /^config=1$/m.test(out), hasCaKey: /^cakey=1$/m.test(out), hasCaCert: ca !== null, caSha256: ca && new X509Certificate(ca).fingerprint256, roles: [...out.matchAll(/^role=(\S+)$/gm)].map((x) => x[1]!), ...(/^openssl=0$/m.test(out) ? { noOpenssl: true } : {}) };
    return { peer, ca, member: m, manifest: parseClueLook(out).manifest };
  });
  // A peer's manifest as the write-manifest step would make it this member's (its pki dir, where the inventory gives another).
  const side = (m: MemberConfig) => ({ name: m.name, host: m.host, dataDir: platform.paths(m).dataDir, pkiDir: platform.paths(m).pkiDir });
  const asTargets = (p: { member: MemberConfig; manifest: string | null } | undefined): string | null => {
    if (!p?.manifest) return null;
    try {
      return platform.adaptConfig(p.manifest, side(p.member), side(conf));
    } catch {
      return p.manifest;
    }
  };
  const [first, ...ps] = await Promise.all([targetFirst, ...peerOuts]);
  const found = ps.filter((p): p is NonNullable<typeof p> => p !== null);

  // Where the target's certificates are: fixed by the profile, or (OpenShift 4.1–4.3) named by the manifest it runs
  // (its own, else the peer's it would be built from) for its etcd DNS name, which a second look reads on its host.
  let mine = platform.pki(conf);
  let certsUnknown: string | undefined;
  let t = first;
  if (first !== null && platform.pkiOnHost) {
    const clues = parseClueLook(first);
    const manifest = clues.manifest ?? asTargets(found.find((p) => p.manifest !== null));
    const envOut = await look(conf, environmentLookLines(environmentFileOf(manifest)));
    const peerURLs = report.members.find((r) => r.name === conf.name)?.peerURLs ?? [];
    const learned = platform.pkiOnHost(conf, { manifest, environment: envOut === null ? null : parseClueLook(envOut).environment, files: clues.files, peerURLs });
    if ('pki' in learned) {
      mine = learned.pki;
      const certOut = await look(conf, pkiLookLines(pkiFiles({ ...mine, cas: otherCasOf(mine.certs) }, mine.certs)));
      t = certOut === null ? null : `${first}\n${certOut}`;
    } else {
      certsUnknown = learned.problem;
      // The CA is where every master keeps it; the pairs cannot be looked for.
      const caOut = await look(conf, pkiLookLines([{ label: 'ca', path: mine.caCert, kind: 'cert' }]));
      t = caOut === null ? null : `${first}\n${caOut}`;
    }
  }
  const caPem = found.find((p) => p.peer.hasCaKey && p.ca)?.ca ?? found.find((p) => p.ca)?.ca ?? null;

  // The other CAs the member's certificates name (4.1–4.3's etcd metric signer): each healthy master's copy of each, and
  // whether it holds that CA's key, where it keeps them in its own pki dir. The cluster's is the one a master with the key holds.
  const others = otherCasOf(mine.certs);
  const otherPems: Record<string, string> = {};
  const held: { at: number; name: string; hasKey: boolean; pem: string }[] = [];
  if (others.length) {
    await Promise.all(
      found.map(async (f) => {
        const places = others.map((o) => ({ o, at: otherCaOn(o, confPaths.pkiDir, platform.paths(f.member).pkiDir) }));
        const out = await look(f.member, [
          ...pkiLookLines(places.map(({ o, at }) => ({ label: `ca:${o.name}`, path: at.caCert, kind: 'cert' as const }))),
          ...places.map(({ o, at }) => sh`if [ -r ${at.caKey} ] && [ -s ${at.caKey} ]; then echo ${`cakey:${o.name}=1`}; fi`),
        ]);
        if (out === null) return;
        const files = parsePkiLook(out);
        f.peer.cas = Object.fromEntries(
          places.map(({ o, at }) => {
            const pem = parsedCert(pemBlock(files.get(`ca:${o.name}`), 'CERTIFICATE'));
            const hasKey = new RegExp(`^cakey:${o.name}=1$`, 'm').test(out);
            if (pem) held.push({ at: found.indexOf(f), name: o.name, hasKey, pem });
            return [o.name, { caCert: at.caCert, caKey: at.caKey, sha256: pem && new X509Certificate(pem).fingerprint256, hasKey }];
          }),
        );
      }),
    );
    for (const o of others) {
      const holders = held.filter((h) => h.name === o.name).sort((a, b) => a.at - b.at);
      const pem = (holders.find((h) => h.hasKey) ?? holders[0])?.pem;
      if (pem) otherPems[o.name] = pem;
    }
  }

  let targetLook: TargetLook | null = null;
  if (t !== null) {
    const files = parsePkiLook(t);
    const now = new Date();
    let pki: TargetLook['pki'] = null;
    const hasConfig = /^config=1$/m.test(t);
    // Without openssl there its keys cannot be read (the look prints their public half with it): a host with its
    // config keeps what it has, as before; a rebuilt one gets the step, and the readiness check asks for openssl.
    const keysUnread = !/^openssl=1$/m.test(t);
    if (caPem && keysUnread && !hasConfig) {
      pki = {
        ca: null,
        certs: Object.fromEntries(mine.certs.map((c) => [c.role, `not checked: openssl is not on ${conf.name}`])),
        caSha256: new X509Certificate(caPem).fingerprint256,
        cas: Object.fromEntries(Object.entries(otherPems).map(([name, pem]) => [name, { problem: `not checked: openssl is not on ${conf.name}`, sha256: new X509Certificate(pem).fingerprint256 }])),
      };
    } else if (caPem && !keysUnread) {
      const theirs = pemBlock(files.get('ca'), 'CERTIFICATE');
      const sameCa = theirs !== null && parsedCert(theirs) !== null && new X509Certificate(theirs).fingerprint256 === new X509Certificate(caPem).fingerprint256;
      pki = {
        ca: theirs === null ? `no ${mine.caCert}` : sameCa ? null : `${mine.caCert} is another CA than the cluster's`,
        caSha256: new X509Certificate(caPem).fingerprint256,
        certs: Object.fromEntries(
          mine.certs.map((c) => {
            // A certificate another CA signs is judged against that CA, as a healthy master has it; none has it: not judged here.
            const judge = c.signedBy ? otherPems[c.signedBy.name] : caPem;
            if (!judge) return [c.role, certsUnknown ?? `not checked: no healthy master has the ${c.signedBy!.what}`];
            return [c.role, certsUnknown ?? memberCertProblem(pemBlock(files.get(`cert:${c.role}`), 'CERTIFICATE'), files.get(`key:${c.role}`) ?? null, judge, c, now, reachedAt(conf.host, c))];
          }),
        ),
        cas: Object.fromEntries(
          others.flatMap((o) => {
            const pem = otherPems[o.name];
            if (!pem) return [];
            const sha256 = new X509Certificate(pem).fingerprint256;
            const theirs = parsedCert(pemBlock(files.get(`ca:${o.name}`), 'CERTIFICATE'));
            return [[o.name, { problem: theirs === null ? `no ${o.caCert}` : new X509Certificate(theirs).fingerprint256 === sha256 ? null : `${o.caCert} is another ${o.what} than the cluster's`, sha256 }]];
          }),
        ),
      };
    }
    targetLook = { name: conf.name, hasConfig, pki, ...(platform.pkiOnHost ? (certsUnknown ? { certsUnknown } : { certs: mine.certs }) : {}) };
  }
  return { target: targetLook, peers: found.map((p) => p.peer) };
}
