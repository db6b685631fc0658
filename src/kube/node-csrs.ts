import { decodeCsrRequest } from './csr-decode.js';
import { KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, NODE_USER_PREFIX } from './csr-policy.js';
import { APPROVE_REASON, csrState, type Csr } from './csrs.js';

/**
 * The kubelet CSRs of one node: its client CSR (CN system:node:<name>, filed by
 * the bootstrapper or the node) and its serving CSR (filed by system:node:<name>),
 * oldest first. What a master brought back by a replace waits for.
 */
export function csrsOfNode(csrs: Csr[], node: string): Csr[] {
  const user = `${NODE_USER_PREFIX}${node}`;
  return csrs
    .filter((c) => {
      const signer = c.spec?.signerName;
      if (signer !== KUBELET_CLIENT_SIGNER && signer !== KUBELET_SERVING_SIGNER) return false;
      if (c.spec?.username === user) return true;
      const d = decodeCsrRequest(c.spec?.request);
      return d.ok && d.csr.subject.commonName === user;
    })
    .sort((a, b) => created(a) - created(b));
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
