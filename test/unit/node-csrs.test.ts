import { beforeAll, describe, expect, it } from 'vitest';
import { KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER } from '../../src/kube/csr-policy.js';
import type { Csr } from '../../src/kube/csrs.js';
import { approvedByText, approverOf, csrsOfNode, servingCsrExpected } from '../../src/kube/node-csrs.js';
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
});
