import { basename } from 'node:path';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { otherCasOf, platformOf, type MemberCert } from '../platform/index.js';

/**
 * What a look at the hosts found before a replace (src/worker/replace-probe.ts):
 * the failed member's own host, and each healthy peer's, read only.
 */
export interface ReplaceHosts {
  /** null: the member's host could not be looked at (the readiness check says why, and refuses). */
  target: TargetLook | null;
  peers: PeerLook[];
}

export interface TargetLook {
  name: string;
  /** Its etcd config (manifest, etcd.conf) is on the host. */
  hasConfig: boolean;
  /**
   * Why each of its certificates (by role) is not one the cluster trusts for
   * it (null: it is), and whether its CA certificate is the cluster's; null
   * when no peer's CA could be read to judge them against.
   */
  pki: {
    ca: string | null;
    certs: Record<string, string | null>;
    /** The CA they were judged against (its sha256 fingerprint): the one that must sign. */ caSha256: string;
    /**
     * Each other CA its certificates name (MemberCert.signedBy), by name, where a healthy master's copy was read: why
     * its copy on the host is not that one (null: it is), and the one judged against. A CA no master has is not here.
     */
    cas?: Record<string, { problem: string | null; sha256: string }>;
  } | null;
  /** Its certificates where the manifest it runs names them (OpenShift 4.1–4.3, Platform.pkiOnHost): judged and issued there, not at the profile's fixed paths. */
  certs?: MemberCert[];
  /** Why where its certificates are could not be learned (its etcd DNS name unknown): none is issued at a guessed path. */
  certsUnknown?: string;
}

export interface PeerLook {
  name: string;
  hasConfig: boolean;
  /** The etcd CA's certificate and key are readable at the profile's paths. */
  hasCaCert: boolean;
  hasCaKey: boolean;
  /** openssl is not on its PATH: it cannot sign (absent: it is, or looks planned before it was asked). */
  noOpenssl?: boolean;
  /** The sha256 fingerprint of its CA certificate (null: none read). */
  caSha256: string | null;
  /** The roles of the member certificates it has (an optional one is issued only where the peers have it). */
  roles: string[];
  /** The other CAs the member's certificates name, by name, as this master keeps them in its own pki dir (see otherCaOn). */
  cas?: Record<string, { caCert: string; caKey: string; sha256: string | null; hasKey: boolean }>;
}

/** What a replace does on a rebuilt host, beside the usual: issue certificates (and where), build the config from a peer's. */
export interface RebuiltChoice {
  /** The peer whose config is adapted to the member's host (its host has none). */
  template?: MemberConfig;
  /** Issue these certificates, signed on `signer`, because of `why`. */
  certs?: {
    signer: MemberConfig;
    /** The other healthy masters, asked in this order when the signer cannot sign once the step runs. */
    fallbacks: MemberConfig[];
    certs: MemberCert[];
    why: string;
    /** The CA the signer holds, as planned against (sha256 fingerprint). */ caSha256: string;
    /** Each other CA the certs name (signedBy), by name: the fingerprint the signer holds, as planned against. */
    otherCaSha256?: Record<string, string>;
  };
  /** Words for the run's thread: what was seen and what the plan does about it. */
  rationale?: string;
}

/**
 * From a look at the hosts, what a replace must do beyond the usual: pure, so
 * every choice is unit-tested. `healthy`: the members answering with a leader,
 * best first (the snapshot's source first). A host with nothing to fix, or
 * one not looked at, needs nothing more; a rebuilt one without a peer to take
 * a config from, or without a CA key on a healthy master, is refused.
 */
export function rebuiltChoice(cluster: ClusterConfig, target: MemberConfig, hosts: ReplaceHosts | undefined, healthy: string[]): { ok: true; choice: RebuiltChoice } | { ok: false; reason: string } {
  const look = hosts?.target;
  if (!look || look.name !== target.name) return { ok: true, choice: {} };
  const platform = platformOf(cluster);
  const pki = platform.pki(target);
  const paths = platform.paths(target);
  const peers = healthy.flatMap((n) => {
    const m = cluster.members.find((x) => x.name === n && n !== target.name);
    const l = hosts!.peers.find((p) => p.name === n);
    return m && l ? [{ m, l }] : [];
  });
  const choice: RebuiltChoice = {};
  const seen: string[] = [];
  const does: string[] = [];

  // On OpenShift 4.4+ no peer's config is adapted (see the write-manifest step): the host's look refuses a master without its own.
  if (!look.hasConfig && !platform.etcdOperator) {
    const t = peers.find((p) => p.l.hasConfig);
    if (!t) {
      return {
        ok: false,
        reason: `${target.name}'s host has no etcd ${platform.configNoun} (${paths.config}): it looks rebuilt, and no healthy master's ${platform.configNoun} could be read to build one from (${peers.length ? peers.map((p) => p.m.name).join(', ') : 'none was reachable over SSH'}). Put its ${platform.configNoun} at ${paths.config} (another master's, adapted to ${target.host}) or make a healthy master reachable, then ask again. Nothing was changed.`,
      };
    }
    choice.template = t.m;
    seen.push(`no ${platform.configNoun} at ${paths.config}`);
    does.push(`its ${platform.configNoun} is built from ${t.m.name}'s, adapted to ${target.host}`);
  }

  if (look.pki === null) {
    // The certificates cannot be judged without the cluster's CA: a host with its config keeps what it has, as before.
    if (!look.hasConfig) return { ok: false, reason: `${target.name}'s host looks rebuilt, and the etcd CA certificate (${pki.caCert}) could not be read from any healthy master to check its certificates against. Nothing was changed.` };
  } else {
    // The CA the certificates were judged against is the one that signs: a master holding another CA's key is not asked.
    const caSha256 = look.pki.caSha256;
    const cas = look.pki.cas ?? {};
    // An optional certificate another CA signs (4.1–4.3's metric pair) is wanted where the cluster has that CA: a healthy
    // master keeps its certificate, the one judged against. Any other optional one where a peer has that role.
    const wanted = (look.certs ?? pki.certs).filter((c) => !c.optional || (c.signedBy ? !!cas[c.signedBy.name] && peers.some((p) => p.l.cas?.[c.signedBy!.name]?.sha256 === cas[c.signedBy!.name]!.sha256) : peers.some((p) => p.l.roles.includes(c.role))));
    const others = otherCasOf(wanted);
    const wrongOf = (c: MemberCert) => look.pki!.certs[c.role];
    const wrong = [
      ...(look.pki.ca ? [`CA: ${look.pki.ca}`] : []),
      ...others.flatMap((o) => (cas[o.name]?.problem ? [`${o.what}: ${cas[o.name]!.problem}`] : [])),
      ...wanted.flatMap((c) => (wrongOf(c) ? [`${c.role}: ${wrongOf(c)}`] : [])),
    ];
    // The other CAs the step needs to sign with or install: those whose certificate or whose CA file on the host is not right.
    const needed = others.filter((o) => cas[o.name]?.problem || wanted.some((c) => c.signedBy?.name === o.name && wrongOf(c)));
    const holds = (p: (typeof peers)[number], o: { name: string }) => !!p.l.cas?.[o.name]?.hasKey && p.l.cas[o.name]!.sha256 === cas[o.name]!.sha256;
    // openssl signs there: a master without it holds the key but cannot use it.
    const etcdSigner = (p: (typeof peers)[number]) => p.l.hasCaKey && p.l.hasCaCert && p.l.caSha256 === caSha256 && !p.l.noOpenssl;
    const noSign = (p: (typeof peers)[number]) => (!p.l.hasCaKey ? 'no etcd CA key' : !p.l.hasCaCert ? 'no etcd CA certificate' : p.l.caSha256 !== caSha256 ? 'another etcd CA' : 'no openssl (the openssl package) to sign with');
    // One master signs the whole set: it must hold the etcd CA and every other CA needed.
    const signer = peers.find((p) => etcdSigner(p) && needed.every((o) => holds(p, o)));
    if (wrong.length) {
      const why = `${target.name}'s etcd certificates are not ones the cluster trusts for it (${wrong.join('; ')})`;
      if (look.certsUnknown) {
        return { ok: false, reason: `${target.name}'s etcd certificates cannot be checked or issued: ${look.certsUnknown}. Set etcdDnsName for ${target.name} in the inventory (its etcd-N DNS name), or put ETCD_DNS_NAME=<that name> in that file (the discovery init container writes it), or its certificates into ${paths.pkiDir} under the names its manifest gives, then ask again. Nothing was changed.` };
      }
      if (!signer && needed.length) {
        // What each master lacks, and what to put where on the one closest to signing (the first holding the etcd CA key).
        type Peer = (typeof peers)[number];
        const at = (p: Peer, o: (typeof needed)[number]) => ({ cert: p.l.cas?.[o.name]?.caCert ?? o.caCert, key: p.l.cas?.[o.name]?.caKey ?? o.caKey });
        const lacks = (p: Peer): string[] => [
          ...(etcdSigner(p) ? [] : [noSign(p)]),
          ...needed.flatMap((o) => {
            if (holds(p, o)) return [];
            const seen = p.l.cas?.[o.name]?.sha256;
            return [!seen ? `no ${o.what} certificate at ${at(p, o).cert}` : seen !== cas[o.name]!.sha256 ? `another ${o.what}` : `no ${o.what} key at ${at(p, o).key}`];
          }),
        ];
        const detail = peers.map((p) => `${p.m.name}: ${lacks(p).join(', ')}`).join('; ');
        const first = peers.find(etcdSigner) ?? peers[0];
        const put = first && [
          ...(etcdSigner(first) ? [] : [`the etcd CA key at ${platform.pki(first.m).caKey}`]),
          ...needed.filter((o) => !holds(first, o)).map((o) => `the ${o.what}'s key (${basename(o.caKey)}, the key of the CA in ${at(first, o).cert}, sha256 ${cas[o.name]!.sha256.slice(0, 23)}…) at ${at(first, o).key}`),
        ];
        return {
          ok: false,
          reason:
            `${why}, and no healthy master holds both the etcd CA key and ${needed.map((o) => `the ${o.what}'s key`).join(' and ')} to sign them (${detail || 'none was reachable over SSH'}). ` +
            `${first ? `Put ${put!.join(' and ')} on ${first.m.name}` : 'Make a healthy master reachable'}, or issue ${target.name}'s certificates by hand from those CAs into ${paths.pkiDir}, then ask again. Nothing was changed.`,
        };
      }
      if (!signer) {
        return {
          ok: false,
          reason: `${why}, and no healthy master holds the etcd CA key at ${pki.caKey} to sign new ones (${peers.map((p) => `${p.m.name}: ${!p.l.hasCaKey ? 'no CA key' : !p.l.hasCaCert ? 'no CA certificate' : p.l.caSha256 !== caSha256 ? `another CA (sha256 ${p.l.caSha256}) than the one the others trust (sha256 ${caSha256})` : 'no openssl (the openssl package) to sign with'}`).join(', ') || 'none was reachable over SSH'}). Issue its certificates by hand from the etcd CA (CN ${wanted[0]!.subject.cn}, SANs ${[...wanted[0]!.sans.dns, ...wanted[0]!.sans.ips].join(', ')}) into ${paths.pkiDir}, then ask again. Nothing was changed.`,
        };
      }
      // Every other healthy master is a fallback, whatever was seen now: the step looks again at each before it signs there.
      // A certificate of another CA's that needs nothing is left out where the signer does not hold that CA (it is valid in place).
      const issued = wanted.filter((c) => !c.signedBy || needed.some((o) => o.name === c.signedBy!.name) || (!!cas[c.signedBy.name] && holds(signer, c.signedBy)));
      const signing = otherCasOf(issued);
      choice.certs = { signer: signer.m, fallbacks: peers.filter((p) => p !== signer).map((p) => p.m), certs: issued, why, caSha256, ...(signing.length ? { otherCaSha256: Object.fromEntries(signing.map((o) => [o.name, cas[o.name]!.sha256])) } : {}) };
      seen.push(wrong.join('; '));
      does.push(`its certificates (${issued.map((c) => c.role).join(', ')}) are issued from the etcd CA${signing.length ? ` and the ${signing.map((o) => `${o.what} (${issued.filter((c) => c.signedBy?.name === o.name).map((c) => c.role).join(', ')})`).join(' and ')}` : ''}, signed on ${signer.m.name}, whose CA ${signing.length ? 'keys stay' : 'key stays'} there; the new keys are made on ${target.name} and stay there`);
    }
  }
  if (does.length) choice.rationale = `${target.name}'s host ${look.hasConfig ? 'has its config but not its certificates' : 'looks rebuilt'} (${seen.join('; ')}): ${does.join('; ')}.`;
  return { ok: true, choice };
}

