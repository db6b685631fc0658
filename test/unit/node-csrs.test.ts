import { beforeAll, describe, expect, it } from 'vitest';
import { KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER } from '../../src/kube/csr-policy.js';
import type { Csr } from '../../src/kube/csrs.js';
import { decodeCsrRequest } from '../../src/kube/csr-decode.js';
import { CsrSubjectMemo } from '../../src/kube/csr-subject-memo.js';
import { approvedByText, approverOf, csrsOfNode, csrsOfNodes, servingCsrExpected } from '../../src/kube/node-csrs.js';
import { asRequest, opensslCsr } from '../support/csr-pem.js';

const BOOTSTRAP = 'system:bootstrap:abcdef';
let pems: Record<string, string>;

beforeAll(async () => {
  pems = {
    m3: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:m3')),
    m2: asRequest(await opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:m2')),
    admin: asRequest(await opensslCsr('ec:P-256', '/O=system:masters/CN=kubernetes-admin')),
  };
});

type Decision = { type: 'Approved' | 'Denied'; reason: string; message: string; manager?: string; issued?: boolean };

function csr(name: string, o: { pem: string; signer: string; user: string; at: number; decided?: Decision }): Csr {
  const d = o.decided;
  return {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: {
      name,
      uid: `uid-${name}`,
      creationTimestamp: new Date(Date.UTC(2026, 10, 24, 10, 0, o.at)),
      managedFields: d?.manager ? [{ manager: d.manager, operation: 'Update', subresource: 'approval' }] : undefined,
    },
    spec: { request: pems[o.pem]!, signerName: o.signer, usages: [], username: o.user },
    status: d ? { conditions: [{ type: d.type, status: 'True', reason: d.reason, message: d.message }], certificate: d.issued ? 'Y2VydA==' : undefined } : {},
  };
}

const byBob: Decision = { type: 'Approved', reason: 'EtcdMedicApprove', message: 'Approved by Slack user UBOB with etcd-medic', issued: true };
const byKubectl: Decision = { type: 'Approved', reason: 'KubectlApprove', message: 'This CSR was approved by kubectl certificate approve.', manager: 'kubectl' };

describe("a master's kubelet CSRs", () => {
  it("picks the node's client CSR (by its CN, from the bootstrapper) and serving CSR (filed by the node), oldest first, and nothing else", () => {
    const all = [
      csr('serving-m3', { pem: 'm3', signer: KUBELET_SERVING_SIGNER, user: 'system:node:m3', at: 20 }),
      csr('client-m2', { pem: 'm2', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 5 }),
      csr('client-m3', { pem: 'm3', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 10 }),
      // Another signer, even for m3's name, is not the kubelet's.
      csr('other-m3', { pem: 'm3', signer: 'example.com/custom', user: 'system:node:m3', at: 1 }),
      csr('admin', { pem: 'admin', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 2 }),
    ];
    expect(csrsOfNode(all, 'm3').map((c) => c.metadata!.name)).toEqual(['client-m3', 'serving-m3']);
    expect(csrsOfNode(all, 'm2').map((c) => c.metadata!.name)).toEqual(['client-m2']);
    expect(csrsOfNode(all, 'm1')).toEqual([]);
  });

  it('expects a serving CSR once the newest client CSR is decided and none came after it', () => {
    const pendingClient = csr('c1', { pem: 'm3', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 10 });
    const approvedClient = csr('c1', { pem: 'm3', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 10, decided: byBob });
    const olderServing = csr('s0', { pem: 'm3', signer: KUBELET_SERVING_SIGNER, user: 'system:node:m3', at: 1, decided: byBob });
    const newServing = csr('s1', { pem: 'm3', signer: KUBELET_SERVING_SIGNER, user: 'system:node:m3', at: 12 });
    expect(servingCsrExpected([])).toBe(false);
    expect(servingCsrExpected([pendingClient])).toBe(false);
    expect(servingCsrExpected([approvedClient])).toBe(true);
    expect(servingCsrExpected([olderServing, approvedClient])).toBe(true);
    expect(servingCsrExpected([olderServing, approvedClient, newServing])).toBe(false);
  });

  it('says who approved: the Slack user the bot approved for, else the field manager; nobody for a pending or denied CSR', () => {
    const client = csr('c1', { pem: 'm3', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 10, decided: byBob });
    const serving = csr('s1', { pem: 'm3', signer: KUBELET_SERVING_SIGNER, user: 'system:node:m3', at: 12, decided: byKubectl });
    const denied = csr('s2', { pem: 'm3', signer: KUBELET_SERVING_SIGNER, user: 'system:node:m3', at: 13, decided: { type: 'Denied', reason: 'EtcdMedicDeny', message: 'Denied by Slack user UBOB with etcd-medic' } });
    const pending = csr('s3', { pem: 'm3', signer: KUBELET_SERVING_SIGNER, user: 'system:node:m3', at: 14 });
    expect([client, serving, denied, pending].map(approverOf)).toEqual(['<@UBOB>', 'kubectl', null, null]);
    expect(approvedByText([client])).toBe('CSR approved by <@UBOB>');
    expect(approvedByText([client, client])).toBe('CSRs approved by <@UBOB>');
    expect(approvedByText([client, serving, denied])).toBe('CSRs approved by <@UBOB>, kubectl');
    expect(approvedByText([pending, denied])).toBeNull();
  });

  it('lists several nodes in one pass exactly as csrsOfNode lists each, a CSR filed by one node naming another in both', () => {
    const all = [
      csr('serving-m3', { pem: 'm3', signer: KUBELET_SERVING_SIGNER, user: 'system:node:m3', at: 20 }),
      csr('client-m2', { pem: 'm2', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 5 }),
      csr('client-m3', { pem: 'm3', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 10 }),
      // m3 files a request in m2's name: whoever looks at either node must see it.
      csr('m3-as-m2', { pem: 'm2', signer: KUBELET_CLIENT_SIGNER, user: 'system:node:m3', at: 7 }),
      csr('other-m3', { pem: 'm3', signer: 'example.com/custom', user: 'system:node:m3', at: 1 }),
      csr('admin', { pem: 'admin', signer: KUBELET_CLIENT_SIGNER, user: BOOTSTRAP, at: 2 }),
    ];
    const names = (l: Csr[]) => l.map((c) => c.metadata!.name);
    const together = csrsOfNodes(all, ['m1', 'm2', 'm3']);
    for (const n of ['m1', 'm2', 'm3']) expect(names(together.get(n)!)).toEqual(names(csrsOfNode(all, n)));
    expect(names(together.get('m2')!)).toEqual(['client-m2', 'm3-as-m2']);
    expect(names(together.get('m3')!)).toEqual(['m3-as-m2', 'client-m3', 'serving-m3']);
    expect(together.get('m1')).toEqual([]);
  });
});

describe('the remembered CN of a CSR request', () => {
  it('gives what decoding the request gives, decoding each distinct request once', () => {
    let decodes = 0;
    const memo = new CsrSubjectMemo(16, (r) => {
      decodes++;
      const d = decodeCsrRequest(r);
      return d.ok ? (d.csr.subject.commonName ?? null) : null;
    });
    for (let i = 0; i < 3; i++) {
      expect(memo.commonName(pems.m3)).toBe('system:node:m3');
      expect(memo.commonName(pems.admin)).toBe('kubernetes-admin');
      // Not a request at all: no name, remembered as such.
      expect(memo.commonName(Buffer.from('not a csr').toString('base64'))).toBeNull();
    }
    expect(memo.commonName(undefined)).toBeNull();
    expect(decodes).toBe(3);
  });

  it('keeps at most its bound, forgetting the oldest first', () => {
    const asked: string[] = [];
    const memo = new CsrSubjectMemo(2, (r) => (asked.push(r), `cn-${r}`));
    memo.commonName('a');
    memo.commonName('b');
    memo.commonName('c'); // a is forgotten
    expect(memo.size).toBe(2);
    expect(memo.commonName('b')).toBe('cn-b');
    expect(memo.commonName('a')).toBe('cn-a');
    expect(asked).toEqual(['a', 'b', 'c', 'a']);
  });
});
