import { isIP } from 'node:net';
import type { MemberConfig } from '../config/schema.js';
import type { MemberCert } from './types.js';

/**
 * The names and addresses a member's serving and peer certificates carry, as
 * kubeadm issues them: the member's (node) name, its address, and localhost
 * with its loopback addresses (kube-apiserver and probes reach etcd there).
 */
export function memberSans(m: Pick<MemberConfig, 'name' | 'host'>): { dns: string[]; ips: string[] } {
  const hostIsIp = isIP(m.host) !== 0;
  return {
    dns: [...new Set([m.name, ...(hostIsIp ? [] : [m.host]), 'localhost'])],
    ips: [...new Set([...(hostIsIp ? [m.host] : []), '127.0.0.1', '::1'])],
  };
}

/**
 * etcd's own files in a pki dir as kubeadm and openshift-ansible both name
 * them: the CA certificate every member trusts, and the member's serving and
 * peer pairs.
 */
export function etcdPkiFiles(pkiDir: string) {
  return {
    caCert: `${pkiDir}/ca.crt`,
    server: { cert: `${pkiDir}/server.crt`, key: `${pkiDir}/server.key` },
    peer: { cert: `${pkiDir}/peer.crt`, key: `${pkiDir}/peer.key` },
  };
}

/** The flags of etcd's that name those files, for a config adapted to a member whose pki dir is `pkiDir`. */
export function etcdPkiFlags(pkiDir: string): Record<string, string> {
  const f = etcdPkiFiles(pkiDir);
  return {
    'trusted-ca-file': f.caCert,
    'peer-trusted-ca-file': f.caCert,
    'cert-file': f.server.cert,
    'key-file': f.server.key,
    'peer-cert-file': f.peer.cert,
    'peer-key-file': f.peer.key,
  };
}

/** The serving and peer certificates of a member (both for server and client auth, as etcd uses peer certs both ways). */
export function servingCerts(m: MemberConfig, pkiDir: string): MemberCert[] {
  const f = etcdPkiFiles(pkiDir);
  const sans = memberSans(m);
  const both: MemberCert['usages'] = ['serverAuth', 'clientAuth'];
  return [
    { role: 'peer', ...f.peer, subject: { cn: m.name }, usages: both, sans },
    { role: 'server', ...f.server, subject: { cn: m.name }, usages: both, sans },
  ];
}
