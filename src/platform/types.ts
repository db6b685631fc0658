import type { ClusterConfig, HostConfig, MemberConfig } from '../config/schema.js';
import type { KubeletPlace } from './kubelet.js';

/**
 * How etcd runs on a master, behind one interface: where things are on a host,
 * how etcd is stopped and started, how its flags are read and changed, how the
 * other control-plane components are stopped and started, what a backup keeps.
 * Planners ask it for the text of each operation; step executors for the shell
 * lines they run. One module per profile in this folder; nothing outside it
 * asks which profile a cluster has.
 *
 * Every shell line returned here quotes its values (src/ssh/shell.ts `sh`) and
 * is meant to run under the member lock, inside a `set -euo pipefail` script.
 */
export interface Platform {
  readonly kind: ClusterConfig['platform']['kind'];
  /** What the file holding etcd's flags is called in messages: "manifest", "etcd.conf". */
  readonly configNoun: string;
  /** Commands the profile's own lines run on a host (for the readiness check), beside what every step runs. */
  readonly tools: string[];

  /** Where things are on one member's host. */
  paths(m: MemberConfig): MemberPaths;

  /**
   * Lines that stop the member's etcd and keep it from starting again (a reboot
   * included), the config kept at `configAside`. Idempotent: a second run does
   * nothing and says "already away from <config>".
   */
  stopLines(c: ConfigPlace): string[];
  /** The same, in the words of a plan. */
  stopText(c: ConfigPlace): string;

  /**
   * Lines run once the config is written: `start` brings a stopped etcd up on
   * it, `restart` makes a running one read it again. Empty where writing the
   * config is itself what starts etcd (a kubelet watching its manifests).
   * `wait: false`: they return once the start is asked for, not once etcd is up
   * (a member of a cluster being bootstrapped is up only once a quorum runs).
   */
  startLines(c: ConfigPlace, mode: 'start' | 'restart', opts?: StartOptions): string[];
  /** What starts etcd once its config is written, for a plan: "the kubelet starts etcd". */
  startText(mode: 'start' | 'restart', opts?: StartOptions): string;

  /** One flag of etcd's (`initial-cluster`), as the config gives it; undefined when it is not set. */
  flag(config: string, name: string): string | undefined;
  /** Why `value` cannot be written as a flag into this platform's config (null: it can); asked at planning, so a plan never stops at its write. */
  flagValueProblem(value: string): string | null;
  /** The config with flags set (a string) or taken out (null); every other line as it was. */
  withFlags(config: string, flags: Record<string, string | null>): string;

  /**
   * The operator that owns etcd's static pods, where one does (OpenShift 4.4+'s
   * cluster-etcd-operator writes etcd-pod.yaml): after a restore it must be told
   * to roll out a new revision of them, which also replaces the manifests the
   * bot wrote. null where the files are the bot's and the operator's to keep.
   */
  readonly etcdOperator: EtcdOperatorResource | null;

  /** What apiserverLines stop and start, in a title or summary: "kube-apiserver". */
  readonly apiserverNoun: string;
  /** The other control-plane components of one master (kube-apiserver), as a step's parameters. */
  apiserverPlace(m: MemberConfig, runId: string): ApiserverPlace;
  /** Lines that stop them (keeping a note of what was stopped) or start again what a stop of this run stopped. */
  apiserverLines(p: ApiserverPlace, action: 'stop' | 'start'): string[];
  apiserverText(p: ApiserverPlace, action: 'stop' | 'start'): string;

  /**
   * Lines that look (read only) whether a host is laid out as this profile
   * says, and print one `layout:<what is wrong>` line per mismatch: a plan for
   * a host that is not is refused before any step runs.
   */
  layoutLines(m: MemberConfig): string[];

  /**
   * Files on a master that name etcd's members, which a membership change can
   * leave naming a removed member or missing a new one (OpenShift 3:
   * master-config.yaml's etcdClientInfo.urls, etcd.conf's ETCD_INITIAL_CLUSTER,
   * flanneld's endpoints). Empty where nothing on the host names them.
   */
  references(m: MemberConfig): MemberReference[];

  /** The host files a backup archives beside the snapshot: what is needed to rebuild the member. */
  backupPaths(m: MemberConfig): string[];

  /**
   * A node's kubelet (masters and workers): its unit, its client certificate and
   * kubeconfig, the bootstrap kubeconfig it starts over with, and where a run
   * keeps the old ones aside (`/etcd kubelets renew`).
   */
  kubelet(h: HostConfig, runId: string): KubeletPlace;

  /**
   * The etcd CA and the member's own certificates on its host: where they are,
   * what each is issued for. A rebuilt master gets them issued from the CA
   * (its keys made on its host, signed where the CA key is) before it joins.
   */
  pki(m: MemberConfig): MemberPki;

  /**
   * Where the profile's masters name their certificates per host (OpenShift
   * 4.1–4.3: `system:etcd-peer:<etcd DNS name>.crt`), the member's pki as its
   * manifest and host say, from what a look there found (see
   * src/worker/pki-look.ts); a reason when it cannot be told. Absent: `pki`'s
   * fixed paths are the truth.
   */
  pkiOnHost?(m: MemberConfig, clues: PkiClues): { pki: MemberPki } | { problem: string };

  /**
   * A healthy peer's config made into this member's, for a host that has none
   * left (rebuilt): its name and data dir, the peer's address in its advertise
   * and listen URLs replaced by this host's (loopback ones kept), its
   * certificate paths this member's; every other setting as the peer has it.
   * The joining flags (initial cluster, state) are set afterwards with `withFlags`.
   */
  adaptConfig(peerConfig: string, from: ConfigSide, to: ConfigSide): string;

  /**
   * Where a member runs when etcd is a Kubernetes workload (a StatefulSet in an
   * admin cluster), reached through that cluster's API alone; absent on the
   * platforms that run etcd on hosts the bot reaches over SSH.
   */
  workload?(m: MemberConfig): WorkloadPlace;
}

/** One member of an etcd StatefulSet: its objects in the admin cluster, as a step's parameters. */
export interface WorkloadPlace {
  namespace: string;
  statefulSet: string;
  container: string;
  pdb: string;
  /** The member's pod: its name is the member's (`--name=$(POD_NAME)`). */
  pod: string;
  /** Its claim of etcd's data, `<claimTemplate>-<pod>`. */
  claim: string;
  /** Where the pods mount that claim (etcd's --data-dir). */
  dataMountPath: string;
  /** The pod that mounts the claim to move the data aside (`etcd-utility-<ordinal>`, as the seed names it), and its image. */
  utilityPod: string;
  utilityImage: string;
  drainTimeoutSeconds: number;
}

/** One member as a config names it: what `adaptConfig` changes from a peer's to this member's. */
export interface ConfigSide {
  name: string;
  /** The address its URLs carry (the inventory's host). */
  host: string;
  dataDir: string;
  pkiDir: string;
}

/** What a look at a member's host (and the manifest it runs) found to learn its certificates by (see Platform.pkiOnHost). */
export interface PkiClues {
  /** The member's etcd manifest, or (a rebuilt master) the healthy peer's that its own is built from. */
  manifest: string | null;
  /** The discovery output on its host (the file the manifest's script sources), if there. */
  environment: string | null;
  /** The files in its pki dir. */
  files: string[];
  /** Its peer URLs in the member list. */
  peerURLs: string[];
}

/** The etcd CA and a member's certificates on its host (see Platform.pki). */
export interface MemberPki {
  /** The CA certificate its etcd trusts (trusted-ca-file). */
  caCert: string;
  /** Where a master of this profile keeps the CA's private key, if it keeps one (kubeadm: every master). */
  caKey: string;
  certs: MemberCert[];
}

/** One certificate of a member's, as the profile issues it. */
export interface MemberCert {
  /** What it is for: "peer", "server", "healthcheck-client". */
  role: string;
  cert: string;
  key: string;
  subject: { cn: string; o?: string };
  usages: ('serverAuth' | 'clientAuth')[];
  /** The names and addresses it is valid for; empty for a client certificate. */
  sans: { dns: string[]; ips: string[] };
  /** Issued only where the other masters have one too (kubeadm's healthcheck-client). */
  optional?: boolean;
  /** Signed by another CA than the etcd CA (OpenShift 4.1–4.3's metric pair, by the etcd metric signer); absent: the etcd CA. */
  signedBy?: OtherCa;
}

/**
 * A CA beside the etcd CA that signs some of a member's certificates. Its
 * certificate is on every master (the member's pods trust it); its key, like
 * the etcd CA's, on the master that signs, in that master's pki dir under
 * the same name as `caKey` here.
 */
export interface OtherCa {
  /** A short name for params and file labels: "metric". */
  name: string;
  /** How a plan calls it: "etcd metric CA". */
  what: string;
  /** Its certificate on the member's host (metric-ca.crt), installed there when missing or another. */
  caCert: string;
  /** Where its key is on a master that signs, as this member's pki dir would hold it (metric-ca.key). */
  caKey: string;
}

export interface MemberPaths {
  /** The file that holds etcd's flags: its static pod manifest, or its EnvironmentFile. */
  config: string;
  /** Where runs keep what they move aside on this host (and the member lock). */
  asideDir: string;
  dataDir: string;
  pkiDir: string;
}

export interface StartOptions {
  /** Wait for etcd to be up (the default), where the way it is started can. */
  wait?: boolean;
}

/** A member's config and the copy of it a run keeps aside. */
export interface ConfigPlace {
  config: string;
  configAside: string;
}

/** One master's control-plane components as a plan names them; `name` is the member, `asideDir` holds its lock. */
export interface ApiserverPlace {
  name: string;
  asideDir: string;
  [detail: string]: string | string[];
}

/** A file on a master that names etcd's members (see Platform.references). */
export interface MemberReference {
  path: string;
  /** How people know it: "master-config.yaml etcdClientInfo.urls". */
  what: string;
  /** What its entries are: etcd client URLs, or `name=peer URL` pairs (an initial cluster). */
  names: 'client-urls' | 'members';
  /** The entries as the file gives them; null when the file does not set them. */
  read(text: string): string[] | null;
  /** The file with its entries replaced, every other line as it was; absent where the bot leaves the file to people. */
  rewrite?(text: string, entries: string[]): string;
  /** What makes a rewrite take effect, in words, and as lines run after it (none: nothing to restart). */
  apply?: { text: string; lines: string[] };
}

/** The custom resource through which an operator is told to redeploy etcd (see Platform.etcdOperator). */
export interface EtcdOperatorResource {
  group: string;
  version: string;
  /** The resource's plural name, as its REST path has it. */
  plural: string;
  /** The one object of the cluster's (cluster-scoped). */
  name: string;
}
