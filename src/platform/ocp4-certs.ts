import { isIP } from 'node:net';
import type { MemberConfig } from '../config/schema.js';
import { memberSans } from './member-pki.js';
import { proxyFlag } from './metrics-proxy.js';
import { podFlag } from './pod-manifest.js';
import type { MemberCert, MemberPki, OtherCa, PkiClues } from './types.js';

/**
 * OpenShift 4.1–4.3 masters name etcd's certificates by the member's etcd DNS
 * name (`etcd-N.<cluster domain>`), as the certs init containers request them
 * from the signer: `<pkiDir>/system:etcd-peer:<dns>.crt`, `system:etcd-server:…`,
 * `system:etcd-metric:…`. The manifest names them with `${ETCD_DNS_NAME}`, which
 * the script takes from the discovery output (/run/etcd/environment). What the
 * manifest says is what the kubelet runs, so that is what the bot reads.
 */

/** The variable the discovery init container writes and etcd-member.yaml's script expands in the certificates' paths. */
export const DNS_VAR = 'ETCD_DNS_NAME';

/** The discovery output a 4.1–4.3 master's script sources (written by the discovery init container). */
export const DEFAULT_ENVIRONMENT = '/run/etcd/environment';

/** The flags of etcd's that name the member's certificates, by role. */
const ROLE_FLAGS = { server: { cert: 'cert-file', key: 'key-file' }, peer: { cert: 'peer-cert-file', key: 'peer-key-file' } } as const;

/** What a 4.1–4.3 certificate's subject is, as the signer issues it (kube-client-agent's --commonname and --orgname). */
const ORG = { server: 'system:etcd-servers', peer: 'system:etcd-peers' } as const;

/** A member's certificate paths as its manifest names them, `${ETCD_DNS_NAME}` still in them; a flag it lacks is the 4.1–4.3 name in its pki dir. */
export function manifestCertPaths(manifest: string, pkiDir: string): { caCert: string; server: { cert: string; key: string }; peer: { cert: string; key: string } } {
  const of = (flag: string, fallback: string) => podFlag(manifest, flag) ?? fallback;
  const paths = (role: 'server' | 'peer') => ({
    cert: of(ROLE_FLAGS[role].cert, `${pkiDir}/system:etcd-${role}:\${${DNS_VAR}}.crt`),
    key: of(ROLE_FLAGS[role].key, `${pkiDir}/system:etcd-${role}:\${${DNS_VAR}}.key`),
  });
  return { caCert: of('trusted-ca-file', `${pkiDir}/ca.crt`), server: paths('server'), peer: paths('peer') };
}

/**
 * The metric pair as the etcd-metrics container's grpc-proxy names it
 * (`--cert-file`/`--key-file`, `--trusted-ca-file` the metric signer's CA),
 * `${ETCD_DNS_NAME}` still in them. Where the pod runs no proxy naming them,
 * the 4.1–4.3 names in its pki dir when the host's files show a metric CA;
 * null when the cluster has none (then no metric pair is issued).
 */
export function manifestMetricPaths(manifest: string | null, pkiDir: string, files: string[]): { caCert: string; cert: string; key: string } | null {
  const cert = manifest ? proxyFlag(manifest, 'cert-file') : undefined;
  const key = manifest ? proxyFlag(manifest, 'key-file') : undefined;
  if (cert && key) return { cert, key, caCert: proxyFlag(manifest!, 'trusted-ca-file') ?? `${pkiDir}/${METRIC_CA_CERT}` };
  if (!files.some((f) => f === METRIC_CA_CERT || /^system:etcd-metric:/.test(f))) return null;
  return { caCert: `${pkiDir}/${METRIC_CA_CERT}`, cert: `${pkiDir}/system:etcd-metric:\${${DNS_VAR}}.crt`, key: `${pkiDir}/system:etcd-metric:\${${DNS_VAR}}.key` };
}

/** The etcd metric signer's files as a 4.1–4.3 master keeps its certificate (and, on the master that signs, its key) in the pki dir. */
export const METRIC_CA_CERT = 'metric-ca.crt';
export const METRIC_CA_KEY = 'metric-ca.key';

/** ETCD_IPV4_ADDRESS as the discovery output sets it: the member's address, which its metric certificate names. */
export function ipInEnvironment(env: string | null): string | null {
  const m = env?.match(/^[ \t]*(?:export[ \t]+)?ETCD_IPV4_ADDRESS=["']?([0-9A-Fa-f.:]+)["']?[ \t]*$/m);
  return m && isIP(m[1]!) ? m[1]! : null;
}

/** The file the manifest's script sources (`. /run/etcd/environment`, `source …`): where the member's ETCD_DNS_NAME is. */
export function environmentFileOf(manifest: string | null): string {
  const m = manifest?.match(/^[ \t]*(?:\.|source)[ \t]+([^\s;&|]+)[ \t]*$/m);
  return m?.[1] ?? DEFAULT_ENVIRONMENT;
}

/**
 * Whether a name is a plain DNS name (dot-separated labels of letters, digits
 * and inner hyphens): the etcd DNS name ends up in file paths, in openssl's
 * -subj and in the subjectAltName line the signer reads, so nothing else is
 * taken from the host or the member list (no `$(…)`, `;`, quote, comma or `..`).
 */
export function isDnsName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

/**
 * ETCD_DNS_NAME as the discovery output sets it (`ETCD_DNS_NAME=etcd-1.example.com`, quoted or not): the last
 * assignment, as the script's shell keeps it. `unreadable`: the file sets it, but to something other than a plain
 * DNS name (`$(hostname)`, `x;rm -rf /`): what the script expands then cannot be told from here, and no other
 * clue is a safe guess for it.
 */
export function dnsNameOfEnvironment(env: string | null): { dns: string } | { unreadable: string } | null {
  const lines = [...(env ?? '').matchAll(new RegExp(`^[ \\t]*(?:export[ \\t]+)?${DNS_VAR}=(.*)$`, 'gm'))];
  const last = lines.at(-1)?.[1]?.trim();
  // Set to nothing (discovery has not run yet): as if unset.
  if (last === undefined || last === '' || last === '""' || last === "''") return null;
  const bare = /^(["'])(.*)\1$/.exec(last)?.[2] ?? last;
  return isDnsName(bare) ? { dns: bare } : { unreadable: last };
}

/** ETCD_DNS_NAME as the discovery output sets it, when it is a plain DNS name (see dnsNameOfEnvironment). */
export function dnsNameInEnvironment(env: string | null): string | null {
  const got = dnsNameOfEnvironment(env);
  return got && 'dns' in got ? got.dns : null;
}

/** The etcd DNS name a member's peer URL carries (`https://etcd-1.example.com:2380`), as the member list has it; null for IP literals and for hosts that are not plain DNS names. */
export function dnsNameInPeerUrls(peerURLs: string[]): string | null {
  for (const u of peerURLs) {
    let host: string;
    try {
      host = new URL(u).hostname.replace(/^\[|\]$/g, '');
    } catch {
      continue;
    }
    // A URL's host may hold `$`, `'`, `;`, `,` and more: such a peer URL says nothing usable about the DNS name.
    if (host && isIP(host) === 0 && isDnsName(host)) return host;
  }
  return null;
}

/** The etcd DNS name in the member's certificate files already on its host (`system:etcd-peer:<dns>.crt`), when there is exactly one. */
export function dnsNameInFiles(files: string[]): string | null {
  const names = new Set(files.flatMap((f) => [...(f.split('/').pop() ?? '').matchAll(/^system:etcd-(?:peer|server):([A-Za-z0-9.-]+)\.crt$/g)].map((x) => x[1]!).filter(isDnsName)));
  return names.size === 1 ? [...names][0]! : null;
}

/** A path with the script's ${ETCD_DNS_NAME} (or $ETCD_DNS_NAME) filled in; null when another expansion is left in it. */
export function expandDnsName(path: string, dns: string): string | null {
  const out = path.replaceAll(`\${${DNS_VAR}}`, dns).replace(new RegExp(`\\$${DNS_VAR}(?![A-Za-z0-9_])`, 'g'), dns);
  return out.includes('$') ? null : out;
}

/**
 * The member's certificates where its manifest says they are, for its etcd
 * DNS name (the inventory's etcdDnsName, else its discovery output, else its
 * peer URL, else the files on its host), issued as the 4.1–4.3 signer issues them: CN
 * `system:etcd-<role>:<dns>`, O `system:etcd-<role>s`, the DNS name in the
 * SANs beside the member's own names and addresses. A reason instead when
 * the DNS name cannot be learned: the paths would be guesses.
 */
export function ocp4MemberPki(m: MemberConfig, pkiDir: string, caKey: string, clues: PkiClues): { pki: MemberPki } | { problem: string } {
  const named = manifestCertPaths(clues.manifest ?? '', pkiDir);
  const env = dnsNameOfEnvironment(clues.environment);
  if (!m.etcdDnsName && env && 'unreadable' in env) {
    // The script sources that file: the paths expand to whatever it sets, which a guess from elsewhere may not be.
    return { problem: `${m.name}'s discovery output (${environmentFileOf(clues.manifest)} on its host) sets ${DNS_VAR} to ${JSON.stringify(env.unreadable.slice(0, 80))}, not a plain DNS name: where its manifest's certificates are cannot be told from here. Set etcdDnsName for ${m.name} in the inventory, or put ${DNS_VAR}=<its etcd-N DNS name> in that file` };
  }
  const dns = m.etcdDnsName ?? (env && 'dns' in env ? env.dns : null) ?? dnsNameInPeerUrls(clues.peerURLs) ?? dnsNameInFiles(clues.files);
  const perHost = [named.caCert, named.server.cert, named.server.key, named.peer.cert, named.peer.key].some((p) => p.includes('$'));
  if (!dns && perHost) {
    return {
      problem: `${m.name}'s etcd DNS name (ETCD_DNS_NAME, which its manifest's certificate paths are named by) could not be learned: no etcdDnsName for it in the inventory, no ${DNS_VAR} in ${environmentFileOf(clues.manifest)} on its host, no DNS name in its peer URL${clues.peerURLs.length ? ` (${clues.peerURLs.join(', ')})` : ''}, no single system:etcd-peer:<name>.crt in ${pkiDir}`,
    };
  }
  const expand = (p: string) => (dns ? expandDnsName(p, dns) : p);
  const certs: MemberCert[] = [];
  for (const role of ['peer', 'server'] as const) {
    const cert = expand(named[role].cert);
    const key = expand(named[role].key);
    if (!cert || !key) return { problem: `${m.name}'s manifest names its ${role} certificate by a variable other than ${DNS_VAR} (${named[role].cert}): where it is cannot be told from here` };
    const sans = memberSans(m);
    certs.push({
      role,
      cert,
      key,
      subject: dns ? { cn: `system:etcd-${role}:${dns}`, o: ORG[role] } : { cn: m.name },
      usages: ['serverAuth', 'clientAuth'],
      sans: { dns: [...new Set([...(dns ? [dns] : []), ...sans.dns])], ips: sans.ips },
    });
  }
  // The metric pair, where the cluster has a metric CA: signed by it (not the etcd CA), for the server's names and the
  // member's address, as the signer issues it for the etcd-metrics proxy. Optional: issued only where a healthy master has that CA.
  const metric = manifestMetricPaths(clues.manifest, pkiDir, clues.files);
  if (metric && dns) {
    const cert = expand(metric.cert);
    const key = expand(metric.key);
    const metricCa = expand(metric.caCert);
    if (!cert || !key || !metricCa) return { problem: `${m.name}'s manifest names its metric certificate by a variable other than ${DNS_VAR} (${metric.cert}): where it is cannot be told from here` };
    const server = certs.find((c) => c.role === 'server')!;
    const ip = ipInEnvironment(clues.environment) ?? (isIP(m.host) ? m.host : null);
    const signedBy: OtherCa = { name: 'metric', what: 'etcd metric CA', caCert: metricCa, caKey: `${pkiDir}/${METRIC_CA_KEY}` };
    certs.push({ role: 'metric', cert, key, subject: { cn: `system:etcd-metric:${dns}`, o: 'system:etcd-metrics' }, usages: ['serverAuth', 'clientAuth'], sans: { dns: server.sans.dns, ips: ip ? [ip] : [] }, optional: true, signedBy });
  }
  const caCert = expand(named.caCert) ?? `${pkiDir}/ca.crt`;
  return { pki: { caCert, caKey, certs } };
}
