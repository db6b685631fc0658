import { rebased } from './adapt-config.js';
import type { OtherCa } from './types.js';

/**
 * Where a master keeps another CA's certificate and key (MemberCert.signedBy):
 * under the same names in its own pki dir as `ca` names them in the member's
 * (a 4.1–4.3 master: metric-ca.crt beside ca.crt, and metric-ca.key where the
 * signer keeps it, like ca.key). A path outside the member's pki dir stays as
 * it is. Real masters share one pki dir (/etc/ssl/etcd): the same paths.
 */
export function otherCaOn(ca: OtherCa, memberPkiDir: string, masterPkiDir: string): { name: string; caCert: string; caKey: string } {
  const moved = (p: string) => rebased(p, memberPkiDir, masterPkiDir) ?? p;
  return { name: ca.name, caCert: moved(ca.caCert), caKey: moved(ca.caKey) };
}

/** The other CAs a set of certificates names, each once (by name). */
export function otherCasOf(certs: { signedBy?: OtherCa }[]): OtherCa[] {
  return [...new Map(certs.flatMap((c) => (c.signedBy ? [[c.signedBy.name, c.signedBy] as const] : []))).values()];
}
