import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { platformOf, type MemberCert } from '../platform/index.js';

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
  pki: { ca: string | null; certs: Record<string, string | null>; /** The CA they were judged against (its sha256 fingerprint): the one that must sign. */ caSha256: string } | null;
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
  /** The sha256 fingerprint of its CA certificate (null: none read). */
  caSha256: string | null;
  /** The roles of the member certificates it has (an optional one is issued only where the peers have it). */
  roles: string[];
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
    const signer = peers.find((p) => p.l.hasCaKey && p.l.hasCaCert && p.l.caSha256 === caSha256);
    const wanted = (look.certs ?? pki.certs).filter((c) => !c.optional || peers.some((p) => p.l.roles.includes(c.role)));
    const wrong = [...(look.pki.ca ? [`CA: ${look.pki.ca}`] : []), ...wanted.flatMap((c) => (look.pki!.certs[c.role] ? [`${c.role}: ${look.pki!.certs[c.role]}`] : []))];
    if (wrong.length) {
      const why = `${target.name}'s etcd certificates are not ones the cluster trusts for it (${wrong.join('; ')})`;
      if (look.certsUnknown) {
        return { ok: false, reason: `${target.name}'s etcd certificates cannot be checked or issued: ${look.certsUnknown}. Set etcdDnsName for ${target.name} in the inventory (its etcd-N DNS name), or put ETCD_DNS_NAME=<that name> in that file (the discovery init container writes it), or its certificates into ${paths.pkiDir} under the names its manifest gives, then ask again. Nothing was changed.` };
      }
      if (!signer) {
        return {
          ok: false,
          reason: `${why}, and no healthy master holds the etcd CA key at ${pki.caKey} to sign new ones (${peers.map((p) => `${p.m.name}: ${!p.l.hasCaKey ? 'no CA key' : !p.l.hasCaCert ? 'no CA certificate' : `another CA (sha256 ${p.l.caSha256}) than the one the others trust (sha256 ${caSha256})`}`).join(', ') || 'none was reachable over SSH'}). Issue its certificates by hand from the etcd CA (CN ${wanted[0]!.subject.cn}, SANs ${[...wanted[0]!.sans.dns, ...wanted[0]!.sans.ips].join(', ')}) into ${paths.pkiDir}, then ask again. Nothing was changed.`,
        };
      }
      // Every other healthy master is a fallback, whatever was seen now: the step looks again at each before it signs there.
      choice.certs = { signer: signer.m, fallbacks: peers.filter((p) => p !== signer).map((p) => p.m), certs: wanted, why, caSha256 };
      seen.push(wrong.join('; '));
      does.push(`its certificates (${wanted.map((c) => c.role).join(', ')}) are issued from the etcd CA, signed on ${signer.m.name}, whose CA key stays there; the new keys are made on ${target.name} and stay there`);
    }
  }
  if (does.length) choice.rationale = `${target.name}'s host ${look.hasConfig ? 'has its config but not its certificates' : 'looks rebuilt'} (${seen.join('; ')}): ${does.join('; ')}.`;
  return { ok: true, choice };
}

