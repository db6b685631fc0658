import { csrSubjects } from './csr-subject-memo.js';
import { KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, NODE_USER_PREFIX } from './csr-policy.js';
import { APPROVE_REASON, csrState, type Csr } from './csrs.js';

/**
 * The kubelet CSRs of one node: its client CSR (CN system:node:<name>, filed by
 * the bootstrapper or the node) and its serving CSR (filed by system:node:<name>),
 * oldest first. What a master brought back by a replace waits for.
 */
export function csrsOfNode(csrs: Csr[], node: string): Csr[] {
  return csrsOfNodes(csrs, [node]).get(node)!;
}

/**
 * csrsOfNode for several nodes in one pass over the list: each CSR is looked at
 * once, not once per node, and its request is decoded at most once (remembered
 * by its content). A CSR filed by one node that names another is in both lists,
 * as csrsOfNode says of each.
 */
export function csrsOfNodes(csrs: Csr[], nodes: string[]): Map<string, Csr[]> {
  const out = new Map(nodes.map((n) => [n, [] as Csr[]]));
  const byUser = new Map(nodes.map((n) => [`${NODE_USER_PREFIX}${n}`, n]));
  for (const c of csrs) {
    const signer = c.spec?.signerName;
    if (signer !== KUBELET_CLIENT_SIGNER && signer !== KUBELET_SERVING_SIGNER) continue;
    const filer = byUser.get(c.spec?.username ?? '');
    if (filer !== undefined) out.get(filer)!.push(c);
    // The request is read only when some other node of the list could be the one it names.
    if (filer !== undefined && out.size === 1) continue;
    const named = byUser.get(csrSubjects.commonName(c.spec?.request) ?? '');
    if (named !== undefined && named !== filer) out.get(named)!.push(c);
  }
  for (const list of out.values()) list.sort((a, b) => created(a) - created(b));
  return out;
}

const created = (c: Csr): number => (c.metadata?.creationTimestamp ? new Date(c.metadata.creationTimestamp).getTime() : 0);

/**
 * A kubelet that got a new client certificate files its serving CSR right after
 * it registers (when it bootstraps its serving certificate, as kubeadm's
 * serverTLSBootstrap and OpenShift do): true while the newest client CSR is
 * decided and no serving CSR came after it.
 */
export function servingCsrExpected(nodeCsrs: Csr[]): boolean {
  const client = nodeCsrs.filter((c) => c.spec?.signerName === KUBELET_CLIENT_SIGNER).at(-1);
  if (!client || csrState(client).state === 'pending') return false;
  return !nodeCsrs.some((c) => c.spec?.signerName === KUBELET_SERVING_SIGNER && created(c) >= created(client));
}

/**
 * Who approved a CSR, as a thread says it: "<@U123>" when the bot approved it for
 * a Slack user, the field manager ("kubectl") or "outside the bot" otherwise;
 * null when it is not approved.
 */
export function approverOf(csr: Csr): string | null {
  const { state, decision } = csrState(csr);
  if ((state !== 'approved' && state !== 'issued') || !decision) return null;
  if (decision.reason === APPROVE_REASON) {
    const m = /^Approved by Slack user ([UW][A-Z0-9]+) /.exec(decision.message ?? '');
    if (m) return `<@${m[1]}>`;
  }
  return decision.manager ?? 'outside the bot';
}

/** "CSRs approved by <@UBOB>" or "CSRs approved by <@UBOB>, kubectl"; null when none of them was approved. */
export function approvedByText(nodeCsrs: Csr[]): string | null {
  const who = [...new Set(nodeCsrs.map(approverOf).filter((x): x is string => x !== null))];
  if (who.length === 0) return null;
  const n = nodeCsrs.filter((c) => approverOf(c) !== null).length;
  return `${n === 1 ? 'CSR' : 'CSRs'} approved by ${who.join(', ')}`;
}
