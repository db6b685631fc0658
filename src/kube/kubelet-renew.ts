import { KUBELET_CLIENT_SIGNER, reviewCsr, type CsrVerdict, type PolicyContext } from './csr-policy.js';
import { csrState, type Csr } from './csrs.js';
import { csrsOfNode, servingCsrExpected } from './node-csrs.js';
import type { KubeNode } from './nodes.js';
import { summarizeNode } from './nodes.js';

/** One CSR of a renewed node, as the step sees it at one look. */
export interface RenewCsr {
  csr: Csr;
  node: string;
  kind: 'client' | 'serving';
  verdict: CsrVerdict;
}

/** What one look at the cluster says about the nodes whose kubelets a run renews. */
export interface RenewLook {
  /** Pending CSRs of those nodes, filed since the run began, that pass policy: the bot approves these. */
  approve: RenewCsr[];
  /** Pending CSRs of those nodes that do not pass policy: shown for people to decide, never approved by the bot. */
  flagged: RenewCsr[];
  /** Per node, what keeps it from being done (NotReady, not registered, a CSR pending, its serving CSR still to come); empty when done. */
  waiting: Record<string, string[]>;
}

const created = (c: Csr): number => (c.metadata?.creationTimestamp ? new Date(c.metadata.creationTimestamp).getTime() : 0);

/**
 * Pure: from the CSRs and Nodes of the cluster, which CSRs of the renewed nodes
 * to approve now (filed since `since`, pending, passing policy), which are
 * flagged, and which nodes are not back yet. A node is back once its Node is
 * Ready, none of its CSRs filed since `since` is pending, and its serving CSR
 * is not still expected (its client CSR was decided and no serving CSR came
 * after it: the kubelet files one right after it registers, and `servingGraceOver`
 * says whether the few seconds it is given for that have passed).
 *
 * `nodeSince` narrows `since` per node to when its kubelet was stopped: a CSR
 * filed before that is not from the restarted kubelet, whoever filed it. And a
 * restarted kubelet files one client CSR: when a node has a second one (not
 * denied) since then, someone else holds a bootstrap token and asks for that
 * node's identity, and which one is the kubelet's is not known here: each still
 * pending is flagged for people, never approved by the bot.
 */
export function lookAtRenewal(p: { csrs: Csr[]; nodes: KubeNode[]; names: string[]; since: Date; nodeSince?: Record<string, Date>; policy: PolicyContext; servingGraceOver: (node: string) => boolean }): RenewLook {
  const out: RenewLook = { approve: [], flagged: [], waiting: {} };
  for (const name of p.names) {
    const since = (p.nodeSince?.[name] ?? p.since).getTime();
    const mine = csrsOfNode(p.csrs, name).filter((c) => created(c) >= since);
    // The client CSRs that would make a certificate for this node (a flagged one cannot: it is never approved by the bot).
    const clients = mine.filter((c) => {
      if (c.spec?.signerName !== KUBELET_CLIENT_SIGNER || csrState(c).state === 'denied') return false;
      const v = reviewCsr(c, p.policy);
      return csrState(c).state !== 'pending' || (v.pass && v.node === name);
    });
    const waiting: string[] = [];
    for (const csr of mine) {
      if (csrState(csr).state !== 'pending') continue;
      let verdict = reviewCsr(csr, p.policy);
      const kind = verdict.kind === 'kubelet-serving' ? 'serving' : 'client';
      if (kind === 'client' && clients.length > 1 && clients.includes(csr)) {
        const others = clients.filter((c) => c !== csr).map((c) => `${c.metadata?.name} (${csrState(c).state})`);
        const reason = `${name} has ${clients.length} client CSRs since its kubelet was restarted (also ${others.join(', ')}): its kubelet files one, so another was filed by someone holding a bootstrap credential; deny the one that is not its kubelet's`;
        verdict = { ...verdict, pass: false, reasons: [...verdict.reasons, reason] };
      }
      // A CSR whose CN names another node is not this node's, whoever filed it: flagged, never approved here.
      const item = { csr, node: name, kind, verdict } as RenewCsr;
      if (verdict.pass && verdict.node === name) out.approve.push(item);
      else out.flagged.push(item);
      waiting.push(`${kind} CSR ${csr.metadata?.name} pending`);
    }
    const node = p.nodes.find((n) => n.metadata?.name === name);
    if (!node) waiting.push('not registered (no Node object)');
    else if (summarizeNode(node).ready !== true) waiting.push('NotReady');
    else if (mine.length > 0 && servingCsrExpected(mine) && !p.servingGraceOver(name)) waiting.push('its serving CSR not filed yet');
    if (waiting.length) out.waiting[name] = waiting;
  }
  return out;
}

/** "csr-abc (client, m1), csr-def (client, w1)": one wave, as the run's thread says it. */
export function waveText(items: RenewCsr[]): string {
  return items.map((i) => `${i.csr.metadata?.name} (kubelet ${i.kind} for ${i.node})`).join(', ');
}
