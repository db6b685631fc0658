import { kubeShortfall, nodeNotReady, readyzProblem, sinceText, type ControlPlaneView, type MasterView } from '../kube/control-plane.js';
import type { NodeSummary } from '../kube/nodes.js';
import type { PeerCheck } from '../status/peer-drift.js';
import { clip, type SlackMessage } from './status-message.js';

const SECTION_MAX = 3000;
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });

function nodeLine(n: NodeSummary, now: Date): string {
  const notReady = nodeNotReady(n, now);
  const state = notReady ? `:x: ${notReady}` : `:white_check_mark: node *${n.name}* Ready since ${sinceText(n.readySince, now)}`;
  const ips = [n.internalIPs.length ? `InternalIP ${n.internalIPs.join(', ')}` : 'no InternalIP', n.externalIPs.length ? `ExternalIP ${n.externalIPs.join(', ')}` : ''].filter(Boolean).join(' · ');
  return `${state} · kubelet ${n.kubeletVersion ?? '?'} · ${ips}`;
}

function masterLines(m: MasterView, v: ControlPlaneView, now: Date): string {
  const node = m.node
    ? nodeLine(m.node, now)
    : v.nodesError
      ? ':grey_question: node unknown (the nodes could not be listed)'
      : `:x: *no Node object*: the inventory names this master, but no node is registered under its name or address ${m.host} (a rebuilt master registers once its kubelet's client CSR is approved: \`/etcd csr ${v.cluster}\`)`;
  const problem = readyzProblem(m.readyz);
  const api = problem ? `:x: kube-apiserver ${m.readyz.url}/readyz: ${problem}` : `:white_check_mark: kube-apiserver ${m.readyz.url}/readyz ok (${m.readyz.tookMs} ms)`;
  return `*${m.name}* · host ${m.host}\n${node}\n${api}`;
}

/** Sections of joined lines, as few as fit: a long list never breaks the 50-block limit. */
function sections(lines: string[], sep = '\n\n'): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let chunk = '';
  for (const l of lines) {
    if (chunk && chunk.length + l.length + sep.length > SECTION_MAX) {
      out.push({ type: 'section', text: mrkdwn(chunk) });
      chunk = '';
    }
    chunk = chunk ? `${chunk}${sep}${l}` : clip(l, SECTION_MAX);
  }
  if (chunk) out.push({ type: 'section', text: mrkdwn(chunk) });
  return out;
}

/**
 * `/etcd nodes`: the verdict and what is missing first, then each master (its
 * Node and its kube-apiserver's /readyz), the control-plane nodes the inventory
 * does not name, and each etcd member's peer URL against its node's addresses.
 */
export function renderNodes(v: ControlPlaneView, peers: PeerCheck | { skipped: string }, footer: string, now: Date = v.at): SlackMessage {
  const short = kubeShortfall(v, now);
  const drift = 'problems' in peers ? peers.problems.length : 0;
  const label = short.length ? 'NOT READY' : 'READY';
  const icon = short.length ? ':red_circle:' : drift ? ':large_orange_circle:' : ':large_green_circle:';
  const head = short.length
    ? `${icon} *${label}*: ${short.length} thing${short.length === 1 ? '' : 's'} missing\n${short.map((s) => `• ${s}`).join('\n')}`
    : `${icon} *${label}*: kube-apiserver /readyz ok on every master (${v.masters.length}), every master's node Ready${drift ? `; but ${drift} peer URL${drift === 1 ? '' : 's'} drifted (below)` : ''}`;
  const api = v.nodesError ? `*API* ${v.server}: :x: ${v.nodesError.reason}` : `*API* ${v.server}: answered`;
  const csrs =
    v.pendingCsrs === null
      ? `*Pending CSRs:* could not be listed (${v.csrsError?.reason ?? 'unknown'})`
      : `*Pending CSRs:* ${v.pendingCsrs}${v.pendingCsrs ? ` · review them with \`/etcd csr ${v.cluster}\`` : ''}`;

  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`Kubernetes control plane of ${v.cluster}: ${label}`, 150) } },
    { type: 'section', text: mrkdwn(clip(`${head}\n${api}\n${csrs}`, SECTION_MAX)) },
    { type: 'divider' },
    ...sections(v.masters.map((m) => masterLines(m, v, now))),
  ];
  if (v.otherNodes.length) {
    blocks.push(...sections([`*Control-plane nodes the inventory does not name*`, ...v.otherNodes.map((n) => nodeLine(n, now))], '\n'));
  }
  const peerLines =
    'skipped' in peers
      ? [`*etcd peer URLs vs node addresses:* not checked: ${peers.skipped}`]
      : peers.problems.length
        ? [`*etcd peer URLs vs node addresses:* ${peers.problems.length} mismatch${peers.problems.length === 1 ? '' : 'es'}`, ...peers.problems.map((p) => `:warning: ${p}`), ...peers.ok.map((o) => `:white_check_mark: ${o}`)]
        : [`*etcd peer URLs vs node addresses:* every member's peer URL is an address of its node`, ...peers.ok.map((o) => `:white_check_mark: ${o}`)];
  blocks.push(...sections(peerLines, '\n'));
  blocks.push({ type: 'context', elements: [mrkdwn(clip(`checked ${v.at.toISOString()} in ${v.tookMs} ms · ${footer}`, 2000))] });

  const text = `Kubernetes control plane of ${v.cluster}: ${label}${short.length ? `: ${short.join('; ')}` : ''}${drift ? ` · ${drift} peer URL drift${drift === 1 ? '' : 's'}` : ''}`;
  return { text: clip(text, 3000), blocks: blocks.slice(0, 50) };
}

/** When the cluster has no Kubernetes access configured: what to set. */
export function renderNoKube(cluster: string, reason: string): SlackMessage {
  const text = `Kubernetes not checked for ${cluster}: ${reason}`;
  return { text, blocks: [{ type: 'section', text: mrkdwn(clip(`:information_source: ${text}`, SECTION_MAX)) }] };
}
