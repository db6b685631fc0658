import { describe, expect, it } from 'vitest';
import type { ControlPlaneView, MasterView } from '../../src/kube/control-plane.js';
import { kubeShortfall } from '../../src/kube/control-plane.js';
import { KubeError } from '../../src/kube/errors.js';
import type { NodeSummary } from '../../src/kube/nodes.js';
import { blockLimitViolations } from '../../src/render/block-limits.js';
import { decodeCommand, encodeCommand } from '../../src/render/command-button.js';
import { renderNodes } from '../../src/render/nodes-message.js';
import { checkPeerUrls, type Resolved } from '../../src/status/peer-drift.js';
import { createLogger } from '../../src/log.js';
import { kubeCheckStep } from '../../src/steps/kube-check.js';
import { kubeCheck } from '../../src/worker/steps/kube-steps.js';
import { threeMasters } from '../support/fixtures.js';
import { newRun } from '../../src/runbook/new-run.js';
import { transition } from '../../src/runbook/transition.js';
import { renderRun } from '../../src/render/run-message.js';
import type { Run, StepSpec } from '../../src/runbook/types.js';

const now = new Date('2026-11-24T10:05:00Z');

const node = (name: string, ip: string, over: Partial<NodeSummary> = {}): NodeSummary => ({
  name,
  controlPlane: true,
  ready: true,
  readySince: new Date('2026-11-24T10:00:00Z'),
  readyReason: 'KubeletReady',
  kubeletVersion: 'v1.32.4',
  internalIPs: [ip],
  externalIPs: [],
  hostnames: [name],
  ...over,
});

const master = (i: number, over: Partial<MasterView> = {}): MasterView => {
  const ip = `10.0.0.${i}`;
  return {
    name: `m${i}`,
    host: ip,
    node: node(`m${i}`, ip),
    addresses: [
      { type: 'InternalIP', address: ip },
      { type: 'Hostname', address: `m${i}` },
    ],
    readyz: { url: `https://${ip}:6443`, ok: true, status: 200, failing: [], tookMs: 3 },
    ...over,
  };
};

const member = (i: number, peer = `https://10.0.0.${i}:2380`) => ({ name: `m${i}`, idHex: `a${i}`, peerURLs: [peer] });
const none = new Map<string, Resolved>();

const view = (masters: MasterView[], over: Partial<ControlPlaneView> = {}): ControlPlaneView => ({
  cluster: 'prod',
  server: 'https://10.0.0.100:6443',
  at: now,
  tookMs: 12,
  nodesError: null,
  masters,
  otherNodes: [],
  pendingCsrs: 0,
  csrsError: null,
  ...over,
});

describe('checkPeerUrls: each member\'s peer URL against its node\'s addresses', () => {
  it('passes members whose peer URL is an address of their node', () => {
    const c = checkPeerUrls([1, 2, 3].map((i) => member(i)), [1, 2, 3].map((i) => master(i)), [], none);
    expect(c.problems).toEqual([]);
    expect(c.ok).toEqual([1, 2, 3].map((i) => `member m${i}: peer URL https://10.0.0.${i}:2380 is an address of node m${i} (InternalIP 10.0.0.${i})`));
  });

  it('names an IP that is not the node\'s, with the etcdctl member update that fixes it', () => {
    const c = checkPeerUrls([member(1), member(2, 'https://10.0.0.9:2380')], [master(1), master(2)], [], none);
    expect(c.problems).toEqual([
      "member m2 (`a2`): peer URL https://10.0.0.9:2380 is not an address of node m2 (InternalIP 10.0.0.2): the member still advertises an address its node no longer has (a rebuilt master, or a load-balancer or DNS entry written into the member list). Fix: `etcdctl member update a2 --peer-urls=https://10.0.0.2:2380` and the member's --initial-advertise-peer-urls, or the node's address if the node is the one that is wrong.",
    ]);
  });

  it('names a DNS record that resolves elsewhere (the OpenShift by-hand fix), and one that does not resolve', () => {
    const resolved = new Map<string, Resolved>([
      ['etcd-1.prod.example.com', { ips: ['10.0.0.1'] }],
      ['etcd-2.prod.example.com', { ips: ['10.0.7.7'] }],
      ['etcd-3.prod.example.com', { error: 'ENOTFOUND' }],
    ]);
    const c = checkPeerUrls([1, 2, 3].map((i) => member(i, `https://etcd-${i}.prod.example.com:2380`)), [1, 2, 3].map((i) => master(i)), [], resolved);
    expect(c.ok).toEqual(['member m1: peer URL https://etcd-1.prod.example.com:2380 is an address of node m1 (InternalIP 10.0.0.1)']);
    expect(c.problems[0]).toBe(
      'member m2 (`a2`): peer URL https://etcd-2.prod.example.com:2380 resolves to 10.0.7.7, not to an address of node m2 (InternalIP 10.0.0.2): the DNS record drifted (the master came back with a new address). Fix: point etcd-2.prod.example.com at 10.0.0.2 (and the load balancer\'s entries for the masters), as the OpenShift recovery does by hand; or `etcdctl member update a2 --peer-urls=https://10.0.0.2:2380`.',
    );
    expect(c.problems[1]).toContain('member m3 (`a3`): peer URL https://etcd-3.prod.example.com:2380: etcd-3.prod.example.com does not resolve from the worker (ENOTFOUND)');
    expect(c.problems[1]).toContain('create the record pointing at 10.0.0.3');
  });

  it('matches by address when names differ, and names a member that no node matches', () => {
    // OpenShift names members after the host, nodes after the cloud's DNS name: the address ties them.
    const renamed = master(1, { name: 'etcd-member-a', node: node('ip-10-0-0-1.internal', '10.0.0.1'), addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] });
    const c = checkPeerUrls([{ name: 'etcd-member-x', idHex: 'f1', peerURLs: ['https://10.0.0.1:2380'] }, { name: '', idHex: 'f2', peerURLs: ['https://10.0.0.8:2380'] }], [renamed], [], none);
    expect(c.ok).toEqual(['member etcd-member-x: peer URL https://10.0.0.1:2380 is an address of node ip-10-0-0-1.internal (InternalIP 10.0.0.1)']);
    expect(c.problems).toHaveLength(1);
    expect(c.problems[0]).toMatch(/^unstarted member f2 \(`f2`\): no node matches it by name or by its peer URL https:\/\/10\.0\.0\.8:2380/);
  });
});

describe('kubeShortfall: what keeps Kubernetes from being ready', () => {
  it('is empty when every /readyz is ok and every master\'s node Ready, even with CSRs pending', () => {
    expect(kubeShortfall(view([1, 2, 3].map((i) => master(i)), { pendingCsrs: 2 }), now)).toEqual([]);
  });

  it('names failing /readyz (refused, or the checks that fail), NotReady nodes since when, missing nodes, and the pending CSRs then', () => {
    const refused = new KubeError('refused', 'connection refused (10.0.0.1:6443): the API server is not running or not listening there');
    const v = view(
      [
        master(1, { readyz: { url: 'https://10.0.0.1:6443', ok: false, error: refused, tookMs: 1 } }),
        master(2, { readyz: { url: 'https://10.0.0.2:6443', ok: false, status: 500, failing: ['etcd failed: reason withheld'], tookMs: 4 }, node: node('m2', '10.0.0.2', { ready: false, readySince: new Date('2026-11-24T10:02:50Z'), readyReason: 'NodeStatusUnknown', readyMessage: 'Kubelet stopped posting node status.' }) }),
        master(3, { node: null, addresses: [] }),
      ],
      { pendingCsrs: 1 },
    );
    expect(kubeShortfall(v, now)).toEqual([
      'kube-apiserver on m1 (https://10.0.0.1:6443) not ready: connection refused (10.0.0.1:6443): the API server is not running or not listening there',
      'kube-apiserver on m2 (https://10.0.0.2:6443) not ready: HTTP 500 (etcd failed: reason withheld)',
      'node m2 NotReady since 2026-11-24T10:02:50Z, 2m 10s ago (NodeStatusUnknown: Kubelet stopped posting node status.)',
      'master m3 has no Node object (its kubelet has not registered)',
      '1 pending CSR',
    ]);
  });

  it('says the nodes could not be listed rather than calling every master missing', () => {
    const v = view([1, 2].map((i) => master(i, { node: null, addresses: [] })), { nodesError: new KubeError('timeout', 'no answer from 10.0.0.100:6443 within 5 s'), pendingCsrs: null });
    expect(kubeShortfall(v, now)).toEqual(['the nodes could not be listed through https://10.0.0.100:6443: no answer from 10.0.0.100:6443 within 5 s']);
  });
});

describe('renderNodes', () => {
  it('stays within Block Kit limits with many masters, nodes and drifts', () => {
    const masters = Array.from({ length: 60 }, (_, i) => master(i + 1));
    const others = Array.from({ length: 30 }, (_, i) => node(`w${i}`, `10.1.0.${i}`));
    const problems = Array.from({ length: 60 }, (_, i) => `member m${i} peer URL drifted `.repeat(10));
    const msg = renderNodes(view(masters, { otherNodes: others }), { ok: [], problems }, 'asked by <@U1> · job nodes-1');
    expect(blockLimitViolations(msg.blocks)).toEqual([]);
    expect(msg.blocks.length).toBeLessThanOrEqual(50);
  });
});

describe('the command button', () => {
  it('carries a command and its arguments, and refuses anything else', () => {
    expect(decodeCommand(encodeCommand({ command: 'csr', args: ['prod'] }))).toEqual({ command: 'csr', args: ['prod'] });
    expect(decodeCommand('{"c":"csr","a":["prod; rm -rf /"]}')).toBeNull();
    expect(decodeCommand('{"c":"CSR","a":[]}')).toBeNull();
    expect(decodeCommand('{"c":"csr","a":"prod"}')).toBeNull();
    expect(decodeCommand('not json')).toBeNull();
    expect(decodeCommand(42)).toBeNull();
  });
});

describe('the kube-check step', () => {
  it('without a kubeconfig says Kubernetes was not checked, passes, and adds no caveat to the run', async () => {
    const { cluster } = threeMasters('{}');
    const step = kubeCheckStep.spec({ cluster });
    expect(step).toMatchObject({ kind: 'kube-check', destructive: false, params: { waitSeconds: 180 } });
    expect(step.operation).toContain('no kubeconfig for this cluster: Kubernetes is not checked');
    const r = await kubeCheck({ cluster, log: createLogger('silent') }, step);
    expect(r.summary).toMatch(/^Kubernetes not checked: no kubeconfig for this cluster/);
    expect(r.caveat).toBeUndefined();
    expect(r.offer).toBeUndefined();
  });
});

describe('a run whose last step ends with a caveat', () => {
  it('ends DONE, and its end and header say the caveat\'s headline', () => {
    const { inventory, cluster } = threeMasters('{}');
    const steps: StepSpec[] = [{ kind: 'verify', title: 'verify', destructive: false, operation: 'verify', params: { voters: 3, minRevision: 0 } }, kubeCheckStep.spec({ cluster })];
    const state = { members: [], leaderHex: null, raftIndex: 0, revision: 0, at: now.toISOString() };
    let run: Run = newRun(inventory, { runId: 'r-0000abcd', runbook: 'restore-quorum', title: 'Restore quorum of prod', cluster: 'prod', target: 'm1', steps, plannedState: state, requestedBy: 'UALICE', channelId: 'C1' }, now);
    const caveat = 'etcd healthy, Kubernetes not yet: node m2 NotReady since …';
    for (const [i, c] of [[0, undefined], [1, caveat]] as const) {
      for (const e of [{ kind: 'start-step', step: i, token: 'A' } as const, { kind: 'complete-step', step: i, token: 'A', summary: c ?? 'ok', caveat: c } as const]) {
        const out = transition(run, e, now);
        if ('refused' in out) throw new Error(out.refused);
        run = out.run;
      }
    }
    expect(run).toMatchObject({ status: 'done', ended: { reason: `every step done; ${caveat}`, caveat } });
    expect(String(renderRun(run).text)).toBe('Restore quorum of prod: DONE: etcd healthy, Kubernetes not yet (run r-0000abcd)');
  });
});
