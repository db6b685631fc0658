import type { ClusterConfig } from '../config/schema.js';
import type { CsrDecodeResult, DecodedCsr } from './csr-decode.js';
import { decodeCsrRequest } from './csr-decode.js';
import type { Csr } from './csrs.js';
import type { KubeNode } from './nodes.js';

/**
 * The review of one CSR: whether it is a kubelet's request that this cluster
 * expects, and if not, every reason why not. The rules are those of the
 * platforms the runbooks cover (kube-controller-manager's csrapproving for
 * kubeadm, OpenShift's cluster-machine-approver), written down here once:
 *
 * Kubelet client certificate (signer kubernetes.io/kube-apiserver-client-kubelet):
 * - subject CN system:node:<name>, O exactly [system:nodes], no SANs at all;
 * - usages exactly {digital signature, client auth}, or the same plus key
 *   encipherment: kubelets with RSA keys (and older kubelets whatever their key)
 *   send it, and Kubernetes' own validation accepts both sets;
 * - requested by the node bootstrapper (a kubeadm bootstrap token, group
 *   system:bootstrappers; OpenShift's service account
 *   openshift-machine-config-operator:node-bootstrapper) or by system:node:<name>
 *   itself (a renewal), never by another node;
 * - <name> is a Node of this cluster or a master or node the inventory names (a
 *   rebuilt master files its client CSR before its Node object exists).
 *
 * Kubelet serving certificate (signer kubernetes.io/kubelet-serving):
 * - requested by system:node:<name> in group system:nodes, CN the same
 *   system:node:<name>, O exactly [system:nodes];
 * - at least one DNS or IP SAN, each one of that node's own names and addresses
 *   (its Node's status.addresses, or the inventory's host for a master whose
 *   Node is not there yet); no email or URI SANs;
 * - usages {digital signature, server auth}, key encipherment allowed.
 *
 * For both: the request decodes, is signed by its own key, and the key is not
 * weak (RSA at least 2048 bits, EC at least 256).
 */

export const KUBELET_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
export const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';
export const NODE_USER_PREFIX = 'system:node:';
export const NODES_GROUP = 'system:nodes';
export const BOOTSTRAPPERS_GROUP = 'system:bootstrappers';
export const OPENSHIFT_NODE_BOOTSTRAPPER = 'system:serviceaccount:openshift-machine-config-operator:node-bootstrapper';

const MIN_RSA_BITS = 2048;
const MIN_EC_BITS = 256;

/** What the policy knows of the cluster: its Nodes with their addresses, and the inventory's masters. */
export interface PolicyContext {
  nodes: { name: string; addresses: string[] }[];
  masters: { name: string; host: string }[];
}

export interface CsrVerdict {
  kind: 'kubelet-client' | 'kubelet-serving' | 'other';
  /** The node the CSR is for (from its CN), when it names one. */
  node?: string;
  pass: boolean;
  /** Every reason it does not pass, each short enough for one line in Slack. */
  reasons: string[];
  decoded?: DecodedCsr;
}

const list = (xs: string[]) => (xs.length ? xs.join(', ') : 'none');

/** The policy's view of a cluster: its Nodes (every address each reports) and the inventory's masters. */
export function policyContext(nodes: KubeNode[], cluster: { members: Pick<ClusterConfig['members'][number], 'name' | 'host'>[]; nodes?: Pick<ClusterConfig['nodes'][number], 'name' | 'host'>[] }): PolicyContext {
  return {
    nodes: nodes.map((n) => ({ name: n.metadata?.name ?? '', addresses: (n.status?.addresses ?? []).map((a) => a.address) })),
    // The inventory's other nodes count as its masters do: a node whose Node object is gone is still expected.
    masters: [...cluster.members, ...(cluster.nodes ?? [])].map((m) => ({ name: m.name, host: m.host })),
  };
}

export function reviewCsr(csr: Csr, ctx: PolicyContext, decodedResult: CsrDecodeResult = decodeCsrRequest(csr.spec?.request)): CsrVerdict {
  const signer = csr.spec?.signerName ?? '';
  const kind = signer === KUBELET_CLIENT_SIGNER ? 'kubelet-client' : signer === KUBELET_SERVING_SIGNER ? 'kubelet-serving' : 'other';
  const reasons: string[] = [];
  if (kind === 'other') reasons.push(`signer ${signer || '(none)'} is not a kubelet signer (${KUBELET_CLIENT_SIGNER} or ${KUBELET_SERVING_SIGNER})`);
  if (!decodedResult.ok) {
    reasons.push(decodedResult.error);
    return { kind, pass: false, reasons };
  }
  const d = decodedResult.csr;
  const cn = d.subject.commonName ?? '';
  const node = cn.startsWith(NODE_USER_PREFIX) && cn.length > NODE_USER_PREFIX.length ? cn.slice(NODE_USER_PREFIX.length) : undefined;
  if (kind === 'other') return { kind, node, pass: false, reasons, decoded: d };

  if (!node) reasons.push(`CN "${cn}" is not ${NODE_USER_PREFIX}<node name>`);
  // The signer keeps the last CN of a subject with several: the certificate would name another identity than the one reviewed.
  if (d.subject.commonNames.length > 1) reasons.push(`the subject has ${d.subject.commonNames.length} CNs (${d.subject.commonNames.join(', ')}): a kubelet asks for exactly one`);
  if (d.subject.organizations.length !== 1 || d.subject.organizations[0] !== NODES_GROUP) {
    reasons.push(`O is [${d.subject.organizations.join(', ')}], not exactly [${NODES_GROUP}]`);
  }
  reasons.push(...keyReasons(d));
  if (node && !isExpectedNode(node, ctx)) reasons.push(`node ${node} is neither a node of this cluster nor a master in the inventory`);

  const usages = csr.spec?.usages ?? [];
  const username = csr.spec?.username ?? '';
  const groups = csr.spec?.groups ?? [];
  const who = `${username || '(unknown user)'}${groups.length ? ` (groups ${groups.join(', ')})` : ''}`;

  if (kind === 'kubelet-client') {
    reasons.push(...usageReasons(usages, ['digital signature', 'client auth']));
    const sans = [...d.san.dns.map((x) => `DNS ${x}`), ...d.san.ips.map((x) => `IP ${x}`), ...d.san.emails.map((x) => `email ${x}`), ...d.san.uris.map((x) => `URI ${x}`), ...d.san.other];
    if (sans.length) reasons.push(`a client certificate has no SANs, this one asks for ${list(sans)}`);
    const bootstrapper = groups.includes(BOOTSTRAPPERS_GROUP) || username === OPENSHIFT_NODE_BOOTSTRAPPER;
    if (username.startsWith(NODE_USER_PREFIX)) {
      if (node && username !== `${NODE_USER_PREFIX}${node}`) reasons.push(`requested by ${username} for another node (${node})`);
    } else if (!bootstrapper) {
      reasons.push(`requested by ${who}: neither the node bootstrapper nor the node itself`);
    }
  } else {
    reasons.push(...usageReasons(usages, ['digital signature', 'server auth']));
    if (!node || username !== `${NODE_USER_PREFIX}${node}` || !groups.includes(NODES_GROUP)) {
      reasons.push(`requested by ${who}: a serving certificate is requested by the node itself (${NODE_USER_PREFIX}${node ?? '<name>'} in ${NODES_GROUP})`);
    }
    if (!d.san.dns.length && !d.san.ips.length) reasons.push('no DNS or IP SAN: a serving certificate names the node');
    if (d.san.emails.length || d.san.uris.length || d.san.other.length) reasons.push(`email, URI and other SANs are not allowed: ${list([...d.san.emails, ...d.san.uris, ...d.san.other])}`);
    if (node) reasons.push(...sanReasons(node, d, ctx));
  }
  return { kind, node, pass: reasons.length === 0, reasons, decoded: d };
}

function isExpectedNode(name: string, ctx: PolicyContext): boolean {
  return ctx.nodes.some((n) => n.name === name) || ctx.masters.some((m) => m.name === name);
}

/** Exactly the required usages, optionally with key encipherment; the reason names what is extra or missing. */
function usageReasons(usages: string[], required: string[]): string[] {
  const allowed = [...required, 'key encipherment'];
  const extra = usages.filter((u) => !allowed.includes(u));
  const missing = required.filter((u) => !usages.includes(u));
  const out: string[] = [];
  if (extra.length) out.push(`extra usage${extra.length > 1 ? 's' : ''}: ${extra.join(', ')} (allowed: ${required.join(', ')}, key encipherment)`);
  if (missing.length) out.push(`missing usage${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  return out;
}

function keyReasons(d: DecodedCsr): string[] {
  const out: string[] = [];
  const { type, bits } = d.key;
  if ((type === 'rsa' || type === 'rsa-pss') && (bits ?? 0) < MIN_RSA_BITS) out.push(`${d.key.text} key is too small (RSA needs at least ${MIN_RSA_BITS} bits)`);
  else if (type === 'ec' && (bits ?? 0) < MIN_EC_BITS) out.push(`${d.key.text} key is too small (EC needs at least P-256)`);
  else if (!['rsa', 'rsa-pss', 'ec', 'ed25519', 'ed448'].includes(type)) out.push(`${d.key.text} keys are not accepted`);
  if (d.signatureValid === false) out.push('the request is not signed by its own key (signature does not verify)');
  return out;
}

/** Each DNS/IP SAN must be the node's own; a SAN that is another node's says whose. */
function sanReasons(node: string, d: DecodedCsr, ctx: PolicyContext): string[] {
  const own = new Set<string>();
  const known = ctx.nodes.find((n) => n.name === node);
  if (known) for (const a of known.addresses) own.add(a.toLowerCase());
  else {
    // A master the inventory names whose kubelet has not registered its Node yet.
    const m = ctx.masters.find((x) => x.name === node);
    if (m) {
      own.add(m.host.toLowerCase());
      own.add(m.name.toLowerCase());
    }
  }
  const owner = (v: string): string | undefined =>
    ctx.nodes.find((n) => n.name !== node && n.addresses.some((a) => a.toLowerCase() === v))?.name ??
    ctx.masters.find((m) => m.name !== node && (m.host.toLowerCase() === v || m.name.toLowerCase() === v))?.name;
  const out: string[] = [];
  for (const san of [...d.san.dns, ...d.san.ips]) {
    const v = san.toLowerCase();
    if (own.has(v)) continue;
    const other = owner(v);
    out.push(other ? `SAN ${san} belongs to node ${other}, not ${node}` : `SAN ${san} is not a name or address of node ${node}`);
  }
  return out;
}
