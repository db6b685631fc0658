import { beforeAll, describe, expect, it } from 'vitest';
import type { Csr } from '../../src/kube/csrs.js';
import { KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, OPENSHIFT_NODE_BOOTSTRAPPER, policyContext, reviewCsr, type PolicyContext } from '../../src/kube/csr-policy.js';
import type { KubeNode } from '../../src/kube/nodes.js';
import { asRequest, opensslCsr, type KeySpec } from '../support/csr-pem.js';

// The cluster: Nodes master-1, master-2 and worker-1; the inventory names master-1..3
// (master-3 was rebuilt and its kubelet has not registered a Node yet).
const node = (name: string, ...addresses: [string, string][]): KubeNode => ({
  metadata: { name, labels: name.startsWith('master') ? { 'node-role.kubernetes.io/control-plane': '' } : {} },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});
const ctx: PolicyContext = policyContext(
  [
    node('master-1', ['InternalIP', '10.0.0.1'], ['Hostname', 'master-1'], ['InternalDNS', 'master-1.example.internal']),
    node('master-2', ['InternalIP', '10.0.0.2'], ['Hostname', 'master-2']),
    node('worker-1', ['InternalIP', '10.0.1.1'], ['Hostname', 'worker-1']),
  ],
  { members: [1, 2, 3].map((i) => ({ name: `master-${i}`, host: `10.0.0.${i}` })) },
);

const CLIENT = ['digital signature', 'client auth'];
const SERVING = ['digital signature', 'key encipherment', 'server auth'];
const KUBEADM_BOOTSTRAP = { username: 'system:bootstrap:abcdef', groups: ['system:bootstrappers', 'system:bootstrappers:kubeadm:default-node-token', 'system:authenticated'] };
const asNode = (n: string) => ({ username: `system:node:${n}`, groups: ['system:nodes', 'system:authenticated'] });

interface Row {
  name: string;
  key?: KeySpec;
  subject: string;
  san?: string;
  signer?: string;
  usages: string[];
  by: { username: string; groups: string[] };
  /** Replaces the request, for requests openssl would not make. */
  request?: (pem: string) => string;
  reasons: string[];
}

const client = (over: Partial<Row> & { name: string }): Row => ({ subject: '/O=system:nodes/CN=system:node:master-1', signer: KUBELET_CLIENT_SIGNER, usages: CLIENT, by: KUBEADM_BOOTSTRAP, reasons: [], ...over });
const serving = (over: Partial<Row> & { name: string }): Row => ({
  subject: '/O=system:nodes/CN=system:node:master-1',
  san: 'DNS:master-1,IP:10.0.0.1',
  signer: KUBELET_SERVING_SIGNER,
  usages: SERVING,
  by: asNode('master-1'),
  reasons: [],
  ...over,
});

const flipSignatureBit = (pem: string) => {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der.writeUInt8(der.readUInt8(der.length - 3) ^ 1, der.length - 3);
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
};

const rows: Row[] = [
  // --- passing ---
  client({ name: 'client, kubeadm bootstrap token' }),
  client({ name: 'client renewal by the node itself, RSA with key encipherment (older kubelets)', key: 'rsa:2048', usages: ['key encipherment', 'digital signature', 'client auth'], by: asNode('master-1') }),
  client({ name: 'client by OpenShift\'s node-bootstrapper for a rebuilt master with no Node yet', subject: '/O=system:nodes/CN=system:node:master-3', by: { username: OPENSHIFT_NODE_BOOTSTRAPPER, groups: ['system:serviceaccounts', 'system:serviceaccounts:openshift-machine-config-operator', 'system:authenticated'] } }),
  serving({ name: 'serving, the node\'s own names and address' }),
  serving({ name: 'serving, Ed25519, its InternalDNS name', key: 'ed25519', san: 'DNS:master-1.example.internal', usages: ['digital signature', 'server auth'] }),
  serving({ name: 'serving for a rebuilt master, by the inventory\'s host', subject: '/O=system:nodes/CN=system:node:master-3', san: 'DNS:master-3,IP:10.0.0.3', by: asNode('master-3') }),
  // --- one flag each ---
  client({ name: 'wrong CN', subject: '/O=system:nodes/CN=system:admin', reasons: ['CN "system:admin" is not system:node:<node name>'] }),
  client({ name: 'O not system:nodes', subject: '/O=system:masters/CN=system:node:master-1', reasons: ['O is [system:masters], not exactly [system:nodes]'] }),
  client({ name: 'two CNs: reviewed as the first, signed as the last', subject: '/O=system:nodes/CN=system:node:master-1/CN=system:node:master-2', reasons: ['the subject has 2 CNs (system:node:master-1, system:node:master-2): a kubelet asks for exactly one'] }),
  client({ name: 'a second O', subject: '/O=system:nodes/O=system:masters/CN=system:node:master-1', reasons: ['O is [system:nodes, system:masters], not exactly [system:nodes]'] }),
  client({ name: 'extra usage', usages: [...CLIENT, 'server auth'], reasons: ['extra usage: server auth (allowed: digital signature, client auth, key encipherment)'] }),
  client({ name: 'missing usage', usages: ['digital signature'], reasons: ['missing usage: client auth'] }),
  client({ name: 'SANs in a client request', san: 'DNS:master-1,IP:10.0.0.1', reasons: ['a client certificate has no SANs, this one asks for DNS master-1, IP 10.0.0.1'] }),
  client({ name: 'unknown requestor', by: { username: 'alice', groups: ['system:authenticated'] }, reasons: ['requested by alice (groups system:authenticated): neither the node bootstrapper nor the node itself'] }),
  client({ name: 'a node asking for another node', by: asNode('master-2'), reasons: ['requested by system:node:master-2 for another node (master-1)'] }),
  client({ name: 'unknown node name', subject: '/O=system:nodes/CN=system:node:master-9', reasons: ['node master-9 is neither a node of this cluster nor a master in the inventory'] }),
  client({ name: 'wrong signer', signer: 'kubernetes.io/kube-apiserver-client', reasons: ['signer kubernetes.io/kube-apiserver-client is not a kubelet signer (kubernetes.io/kube-apiserver-client-kubelet or kubernetes.io/kubelet-serving)'] }),
  client({ name: 'key too small', key: 'rsa:1024', reasons: ['RSA 1024 key is too small (RSA needs at least 2048 bits)'] }),
  client({ name: 'signature that does not verify', request: flipSignatureBit, reasons: ['the request is not signed by its own key (signature does not verify)'] }),
  client({ name: 'not a PKCS#10 request', request: () => 'garbage', reasons: ['the request is not a PEM "CERTIFICATE REQUEST" block'] }),
  serving({ name: 'SANs of another node', san: 'DNS:master-1,IP:10.0.0.2', reasons: ['SAN 10.0.0.2 belongs to node master-2, not master-1'] }),
  serving({ name: 'a SAN nobody owns', san: 'DNS:master-1,DNS:api.evil.example', reasons: ['SAN api.evil.example is not a name or address of node master-1'] }),
  serving({ name: 'serving requested by the bootstrapper', by: KUBEADM_BOOTSTRAP, reasons: ['requested by system:bootstrap:abcdef (groups system:bootstrappers, system:bootstrappers:kubeadm:default-node-token, system:authenticated): a serving certificate is requested by the node itself (system:node:master-1 in system:nodes)'] }),
  serving({ name: 'serving without SANs', san: undefined, reasons: ['no DNS or IP SAN: a serving certificate names the node'] }),
  serving({ name: 'serving with an email and a URI SAN', san: 'DNS:master-1,email:root@master-1,URI:spiffe://x/y', reasons: ['email, URI and other SANs are not allowed: root@master-1, spiffe://x/y'] }),
  serving({ name: 'serving with client auth', usages: ['digital signature', 'server auth', 'client auth'], reasons: ['extra usage: client auth (allowed: digital signature, server auth, key encipherment)'] }),
  // --- everything wrong at once: every reason is listed ---
  client({
    name: 'every flag at once',
    key: 'rsa:1024',
    subject: '/O=system:masters/CN=system:node:master-9',
    san: 'DNS:master-9',
    usages: ['digital signature', 'client auth', 'server auth'],
    by: { username: 'mallory', groups: ['system:authenticated'] },
    reasons: [
      'O is [system:masters], not exactly [system:nodes]',
      'RSA 1024 key is too small (RSA needs at least 2048 bits)',
      'node master-9 is neither a node of this cluster nor a master in the inventory',
      'extra usage: server auth (allowed: digital signature, client auth, key encipherment)',
      'a client certificate has no SANs, this one asks for DNS master-9',
      'requested by mallory (groups system:authenticated): neither the node bootstrapper nor the node itself',
    ],
  }),
];

const requests = new Map<string, string>();
beforeAll(async () => {
  // One openssl request per row, made in parallel (each is a real PKCS#10 request).
  await Promise.all(
    rows.map(async (r) => {
      const pem = await opensslCsr(r.key ?? 'ec:P-256', r.subject, r.san);
      requests.set(r.name, asRequest(r.request ? r.request(pem) : pem));
    }),
  );
});

function csrOf(r: Row): Csr {
  return {
    metadata: { name: `csr-${r.name.length}` },
    spec: { request: requests.get(r.name)!, signerName: r.signer ?? '', usages: r.usages, username: r.by.username, groups: r.by.groups },
  };
}

describe('the CSR policy', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', (_name, r) => {
    const v = reviewCsr(csrOf(r), ctx);
    expect(v.reasons).toEqual(r.reasons);
    expect(v.pass).toBe(r.reasons.length === 0);
  });

  it('says which kind and which node a CSR is for', () => {
    const v = reviewCsr(csrOf(rows.find((r) => r.name.startsWith('serving for a rebuilt master'))!), ctx);
    expect(v).toMatchObject({ kind: 'kubelet-serving', node: 'master-3', pass: true });
    expect(v.decoded?.san.ips).toEqual(['10.0.0.3']);
    expect(reviewCsr(csrOf(rows.find((r) => r.name === 'wrong signer')!), ctx).kind).toBe('other');
  });
});
