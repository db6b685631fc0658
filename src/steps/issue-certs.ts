import { basename } from 'node:path';
import { z } from 'zod';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import type { MemberCert } from '../platform/index.js';
import { issueCerts } from '../worker/steps/cert-steps.js';
import { LOCKED, uniq } from './host-tools.js';
import { sshText } from './plan-text.js';
import type { Step, StepDefinition } from './types.js';

/** Where one master keeps a CA other than the etcd CA (see MemberCert.signedBy): its name, certificate and key there. */
export interface SignerCaPlace {
  name: string;
  caCert: string;
  caKey: string;
}

/** How long an issued certificate is valid, in days: kubeadm's one year. */
export const CERT_DAYS = 365;

const cert = z.object({
  role: z.string(),
  cert: z.string(),
  key: z.string(),
  /** Where what was at `cert` and `key` goes: `<aside dir>/<file>.<run>`. */
  certAside: z.string(),
  keyAside: z.string(),
  cn: z.string(),
  o: z.string().optional(),
  usages: z.array(z.enum(['serverAuth', 'clientAuth'])).min(1),
  dns: z.array(z.string()),
  ips: z.array(z.string()),
  /** The name of the other CA (`cas`) that signs it; absent: the etcd CA (and in runs planned before). */
  ca: z.string().optional(),
});

/** A CA beside the etcd CA (OpenShift 4.1–4.3's etcd metric signer): its certificate on the member's host, as the plan judged it. */
const otherCa = z.object({
  name: z.string(),
  /** How the step's output calls it: "etcd metric CA". */
  what: z.string(),
  caCert: z.string(),
  caAside: z.string(),
  caSha256: z.string().regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
});
/** Where one master keeps another CA's certificate and key (in its own pki dir). */
const caPlace = z.object({ name: z.string(), caCert: z.string(), caKey: z.string() });

const params = z.object({
  name: z.string(),
  /** The inventory's host of the member: a certificate in place must name it to be kept. */
  address: z.string(),
  asideDir: z.string(),
  /** The run's staging dir on the member's host: its new keys are made there, and its certificates land there first. */
  staging: z.string(),
  caCert: z.string(),
  caAside: z.string(),
  /** The surviving master that signs, and where its CA certificate and key are. */
  signer: z.string(),
  signerCaCert: z.string(),
  signerCaKey: z.string(),
  /**
   * The other surviving masters, in the order they are asked when `signer` cannot sign (its CA key gone or unreadable,
   * another CA there, the host not answering): the key may sit on one master only. Absent in runs planned before.
   */
  fallbackSigners: z.array(z.object({ name: z.string(), caCert: z.string(), caKey: z.string(), cas: z.array(caPlace).optional() })).optional(),
  /** The other CAs that sign some of `certs`, and where the planned signer keeps each: it must hold them all. Absent in runs planned before. */
  cas: z.array(otherCa).optional(),
  signerCas: z.array(caPlace).optional(),
  /** The CA the plan judged the member's certificates against (sha256 fingerprint, as Node prints it): the signer must still hold it. */
  caSha256: z.string().regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
  days: z.number().int().positive(),
  certs: z.array(cert).min(1),
});
export type IssueCertsStep = Step<'issue-certs', z.infer<typeof params>> & { host: string };

/** The commands the member's host runs: the lock, openssl for keys and CSRs, base64 and sha256sum for what arrives, cp/mv/chmod to install. */
const TARGET_TOOLS = uniq([...LOCKED, 'openssl', 'base64', 'sha256sum', 'cat', 'cp', 'mv', 'chmod']);
/** The signer only reads its CA and runs openssl; nothing is written there. */
const SIGNER_TOOLS = ['bash', 'cat', 'wc', 'sha256sum', 'cut', 'openssl', 'base64'];

/**
 * A member's etcd certificates issued from the cluster's etcd CA onto its host
 * before it joins (a rebuilt master has none, or ones the cluster does not
 * trust): the keys made on its host, the CSRs signed on a surviving master
 * where the CA key stays, what was there moved aside. See cert-steps.ts.
 */
export const issueCertsStep = {
  kind: 'issue-certs',
  params,
  spec(i: {
    cluster: ClusterConfig;
    member: MemberConfig;
    signer: MemberConfig;
    runId: string;
    asideDir: string;
    caCert: string;
    signerCa: { cert: string; key: string; others?: SignerCaPlace[] };
    fallbacks?: { member: MemberConfig; cert: string; key: string; others?: SignerCaPlace[] }[];
    certs: MemberCert[];
    why: string;
    caSha256: string;
    /** The fingerprint of each other CA the certs name (signedBy), by its name, as the plan judged them. */
    otherCaSha256?: Record<string, string>;
  }): IssueCertsStep {
    const aside = (path: string) => `${i.asideDir}/${basename(path)}.${i.runId}`;
    const staging = `${i.asideDir}/certs-${i.runId}`;
    const sans = (c: MemberCert) => [...c.sans.dns.map((d) => `DNS:${d}`), ...c.sans.ips.map((ip) => `IP:${ip}`)].join(',');
    const fallbacks = (i.fallbacks ?? []).filter((f) => f.member.name !== i.signer.name && f.member.name !== i.member.name);
    const orElse = fallbacks.length ? ` (if ${i.signer.name} cannot sign, its CA key gone or another CA there, the same on ${fallbacks.map((f) => `${f.member.name}, with ${f.key}`).join('; then ')})` : '';
    const others = [...new Map(i.certs.flatMap((c) => (c.signedBy ? [[c.signedBy.name, c.signedBy] as const] : []))).values()];
    for (const o of others) if (!i.otherCaSha256?.[o.name]) throw new Error(`the ${o.what} that signs ${i.member.name}'s ${o.name} certificate was not judged: no fingerprint for it`);
    const placeOf = (list: SignerCaPlace[] | undefined, name: string, who: string) => {
      const found = list?.find((x) => x.name === name);
      if (!found) throw new Error(`where ${who} keeps the ${name} CA was not given`);
      return found;
    };
    const each = i.certs.map((c) => `${c.role} (CN=${c.subject.cn}${c.subject.o ? `, O=${c.subject.o}` : ''}${sans(c) ? `, ${sans(c)}` : ''}; ${c.usages.join('+')}${c.signedBy ? `; signed by the ${c.signedBy.what}` : ''}) → ${c.cert}`).join('; ');
    const otherText = others.map((o) => {
      const at = placeOf(i.signerCa.others, o.name, i.signer.name);
      return `; the ${o.name} certificate's CSR signed there with the ${o.what} ${at.caCert} and its key ${at.caKey}, which never leaves ${i.signer.name} either (the ${o.what}, sha256 ${i.otherCaSha256![o.name]!.slice(0, 23)}…, put at ${o.caCert} as well)`;
    }).join('');
    return {
      kind: 'issue-certs',
      title: `Issue ${i.member.name}'s etcd certificates from the cluster's CA`,
      destructive: true,
      host: i.member.name,
      operation:
        `${i.why}. On ${sshText(i.cluster, i.member.name)}: openssl genpkey (RSA 2048) in ${staging}, the keys never leave ${i.member.name}; ` +
        `their CSRs signed on ${sshText(i.cluster, i.signer.name)} with the etcd CA ${i.signerCa.cert} and its key ${i.signerCa.key}, which never leaves ${i.signer.name}${otherText}${orElse} (openssl x509 -req, ${CERT_DAYS} days): ${each}; ` +
        `the CA certificate (sha256 ${i.caSha256.slice(0, 23)}…, the one the plan was made against; another there refuses the step) put at ${i.caCert}; whatever is at those paths moved to ${i.asideDir}/<file>.${i.runId}. A certificate already valid there is kept`,
      params: {
        name: i.member.name,
        address: i.member.host,
        asideDir: i.asideDir,
        staging,
        caCert: i.caCert,
        caAside: aside(i.caCert),
        signer: i.signer.name,
        signerCaCert: i.signerCa.cert,
        signerCaKey: i.signerCa.key,
        ...(fallbacks.length ? { fallbackSigners: fallbacks.map((f) => ({ name: f.member.name, caCert: f.cert, caKey: f.key, ...(others.length ? { cas: others.map((o) => ({ ...placeOf(f.others, o.name, f.member.name), name: o.name })) } : {}) })) } : {}),
        ...(others.length
          ? {
              cas: others.map((o) => ({ name: o.name, what: o.what, caCert: o.caCert, caAside: aside(o.caCert), caSha256: i.otherCaSha256![o.name]! })),
              signerCas: others.map((o) => ({ ...placeOf(i.signerCa.others, o.name, i.signer.name), name: o.name })),
            }
          : {}),
        caSha256: i.caSha256,
        days: CERT_DAYS,
        certs: i.certs.map((c) => ({ role: c.role, cert: c.cert, key: c.key, certAside: aside(c.cert), keyAside: aside(c.key), cn: c.subject.cn, ...(c.subject.o ? { o: c.subject.o } : {}), usages: c.usages, dns: c.sans.dns, ips: c.sans.ips, ...(c.signedBy ? { ca: c.signedBy.name } : {}) })),
      },
    };
  },
  // Host steps stop their SSH command once this worker lost the run lease (another may run the step now).
  execute: (ctx, step) => issueCerts(ctx.host, step, ctx.leaseLost),
  hosts: {
    tools: TARGET_TOOLS,
    how: { openssl: 'openssl genpkey, req and x509' },
    // Only the planned signer must be ready: the fallbacks are asked only when it cannot sign, and one that does not answer then is named, not fatal.
    members: (step) => [{ member: step.host }, { member: step.params.signer, tools: SIGNER_TOOLS }],
  },
} satisfies StepDefinition<'issue-certs'>;
