import { createPublicKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { MemberCert } from '../platform/index.js';

const USAGE_OID: Record<MemberCert['usages'][number], string> = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' };

/** An IP address as Node prints it in a subjectAltName ("0:0:0:0:0:0:0:1" for ::1), for comparing. */
function canonicalIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => parseInt(g || '0', 16).toString(16)).join(':');
}

/** The DNS names and IPs of a certificate's subjectAltName, as Node gives it ("DNS:m3, IP Address:10.0.0.3"). */
export function sansOf(cert: X509Certificate): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) dns.push(part.slice(4).toLowerCase());
    else if (part.startsWith('IP Address:')) ips.push(canonicalIp(part.slice(11)));
  }
  return { dns, ips };
}

const spki = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' }).toString('base64');

/**
 * The names a certificate must carry to be kept: the address its peers and
 * clients reach the member at (the inventory's host). Certificates made by
 * other tools name fewer than kubeadm issues (no localhost, no ::1) and serve
 * well; a certificate this bot issues carries every name of `want.sans`.
 */
export function reachedAt(host: string, want: MemberCert): { dns: string[]; ips: string[] } {
  if (!want.sans.dns.length && !want.sans.ips.length) return { dns: [], ips: [] };
  return isIP(host) ? { dns: [], ips: [host] } : { dns: [host], ips: [] };
}

/**
 * Why a member's certificate on its host is not the one it needs (null: it
 * is): missing, not signed by the cluster's etcd CA, outside its validity (or
 * ending within `minDays`), without one of the names in `mustName` (see
 * reachedAt; `want.sans` for one just issued), without a usage etcd needs, or
 * not the pair of the key beside it. `keyPublic`: the public half of the key
 * file, as the host printed it.
 */
export function memberCertProblem(certPem: string | null, keyPublic: string | null, caPem: string, want: MemberCert, now: Date, mustName: { dns: string[]; ips: string[] } = want.sans, minDays = 1): string | null {
  if (certPem === null) return `no ${want.cert}`;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return `${want.cert} is not a PEM certificate`;
  }
  const ca = new X509Certificate(caPem);
  // The metric pair of OpenShift 4.1–4.3 is judged against the metric signer: the message names the CA it was judged against.
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return `${want.cert} is not signed by the cluster's ${want.signedBy?.what ?? 'etcd CA'} (issuer ${cert.issuer.replace(/\n/g, ', ')}, the CA is ${ca.subject.replace(/\n/g, ', ')})`;
  // Five minutes of leeway: the signing master's clock may run a little ahead of the worker's.
  if (Date.parse(cert.validFrom) > now.getTime() + 5 * 60_000) return `${want.cert} is not valid before ${new Date(cert.validFrom).toISOString()}`;
  if (Date.parse(cert.validTo) < now.getTime() + minDays * 86_400_000) return `${want.cert} ends ${new Date(cert.validTo).toISOString()}`;
  const has = sansOf(cert);
  const missing = [...mustName.dns.filter((d) => !has.dns.includes(d.toLowerCase())).map((d) => `DNS:${d}`), ...mustName.ips.filter((ip) => !has.ips.includes(canonicalIp(ip))).map((ip) => `IP:${ip}`)];
  if (missing.length) return `${want.cert} is not valid for ${missing.join(', ')} (it names ${cert.subjectAltName ?? 'nothing'})`;
  const usages = cert.keyUsage ?? [];
  const lacking = want.usages.filter((u) => !usages.includes(USAGE_OID[u]));
  if (lacking.length) return `${want.cert} is not for ${lacking.join(', ')}`;
  if (keyPublic === null) return `no key ${want.key} beside ${want.cert}`;
  try {
    if (spki(createPublicKey(keyPublic)) !== spki(cert.publicKey)) return `${want.cert} is not the pair of ${want.key} (another key's certificate)`;
  } catch {
    return `${want.key} is not a key openssl reads`;
  }
  return null;
}

/** A subject as Node and the CSR decoder print it, one RDN after another: "O=system:masters, CN=…". */
export function subjectText(s: { cn: string; o?: string }): string {
  return [...(s.o ? [`O=${s.o}`] : []), `CN=${s.cn}`].join(', ');
}

/**
 * Why a certificate just signed for a member is not exactly the one asked for
 * (null: it is), beyond memberCertProblem: its subject is the planned one and
 * nothing more, its names are the planned ones and no others, its usages are
 * the planned ones, it is not a CA, it carries the serial the worker sent
 * (not an older certificate handed back) and, given `validity`, it is valid
 * from now for the days asked and no longer. The signing master's openssl copies
 * the request's subject and sets the extensions from the worker's file; what
 * comes back is checked, not trusted.
 */
export function issuedCertProblem(certPem: string, want: MemberCert, serialHex: string, validity?: { days: number; now: Date }): string | null {
  const cert = new X509Certificate(certPem);
  if (validity) {
    // The plan approved certificates for `days`: one that lives longer, or was dated back, is not the one asked for (a day of leeway for clocks).
    const day = 86_400_000;
    const until = validity.now.getTime() + (validity.days + 1) * day;
    if (Date.parse(cert.validTo) > until) return `it is valid until ${new Date(cert.validTo).toISOString()}, longer than the ${validity.days} days asked`;
    if (Date.parse(cert.validFrom) < validity.now.getTime() - day) return `it is dated back to ${new Date(cert.validFrom).toISOString()}`;
  }
  const subject = cert.subject.split('\n').join(', ');
  if (subject !== subjectText(want.subject)) return `it names ${subject}, not ${subjectText(want.subject)}`;
  if (cert.ca) return 'it is a CA certificate';
  const has = sansOf(cert);
  const extra = [...has.dns.filter((d) => !want.sans.dns.map((x) => x.toLowerCase()).includes(d)).map((d) => `DNS:${d}`), ...has.ips.filter((ip) => !want.sans.ips.map(canonicalIp).includes(ip)).map((ip) => `IP:${ip}`)];
  if (extra.length) return `it is also valid for ${extra.join(', ')}, which the plan does not name`;
  const other = (cert.keyUsage ?? []).filter((oid) => !want.usages.some((u) => USAGE_OID[u] === oid));
  if (other.length) return `it has usages the plan does not name (${other.join(', ')})`;
  if (BigInt(`0x${cert.serialNumber}`) !== BigInt(`0x${serialHex}`)) return `its serial is ${cert.serialNumber.toLowerCase()}, not ${serialHex} as sent`;
  return null;
}

/** Whether a signed certificate is for this public key (the staged key's CSR): before it is written next to the key. */
export function certMatchesKey(certPem: string, keyPublic: string): boolean {
  return spki(new X509Certificate(certPem).publicKey) === spki(createPublicKey(keyPublic));
}
