import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import { KubeCluster } from '../../src/kube/client.js';
import { KUBELET_CLIENT_SIGNER } from '../../src/kube/csr-policy.js';
import { listPendingCsrs } from '../../src/kube/csrs.js';
import { makeCa, makeCert } from '../../src/lab/certs.js';
import { statusPendingCsrs } from '../../src/worker/status-diagnosis.js';

/**
 * The pending-CSR list of `/etcd status` over a kept connection: a real HTTPS server
 * that counts TLS connections, and that can drop a kept one as it is used again.
 */
describe('the CSR list of status over a kept connection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medic-kube-ka-'));
  let server: Server;
  let kubeconfig = '';
  let connections = 0;
  /** The fault: the next request that comes on a connection already used has its connection cut (a server or load balancer that closed it). */
  let cutReused = false;
  const used = new WeakSet<object>();

  beforeAll(async () => {
    const ca = await makeCa(join(dir, 'ca'));
    const srv = await makeCert(join(dir, 'srv'), 'apiserver', ca, ['127.0.0.1']);
    const client = await makeCert(join(dir, 'admin'), 'admin', ca, []);
    const list = {
      kind: 'CertificateSigningRequestList',
      apiVersion: 'certificates.k8s.io/v1',
      metadata: { resourceVersion: '7' },
      items: [
        {
          metadata: { name: 'csr-m1', uid: 'u1', creationTimestamp: '2026-11-27T03:00:00Z' },
          spec: { request: 'eA==', signerName: KUBELET_CLIENT_SIGNER, usages: ['client auth'], username: 'system:node:m1' },
          status: {},
        },
      ],
    };
    server = createServer({ cert: readFileSync(srv.cert), key: readFileSync(srv.key) }, (req, res) => {
      if (cutReused && used.has(req.socket)) {
        cutReused = false;
        req.socket.destroy();
        return;
      }
      used.add(req.socket);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(list));
    });
    server.on('secureConnection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:${(server.address() as AddressInfo).port}", certificate-authority: ${ca.cert} } }]
users: [{ name: u, user: { client-certificate: ${client.cert}, client-key: ${client.key} } }]
contexts: [{ name: ctx, context: { cluster: c, user: u } }]
current-context: ctx
`,
    );
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const cluster = () =>
    parseInventory(
      `clusters:
  - name: ka
    etcd: { endpoints: ["https://127.0.0.1:2379"] }
    kubeconfig: ${kubeconfig}
    members:
      - { name: m1, host: 127.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: SHA256:${'A'.repeat(43)} } }`,
      'i.yaml',
    ).clusters[0]!;

  it('opens one TLS connection for calls made one after the other with keepAlive, one per call without', async () => {
    const before = connections;
    for (let i = 0; i < 3; i++) expect(await listPendingCsrs(KubeCluster.forCluster(cluster(), { keepAlive: true }))).toHaveLength(1);
    expect(connections - before).toBe(1);
    const without = connections;
    for (let i = 0; i < 2; i++) await listPendingCsrs(KubeCluster.forCluster(cluster()));
    expect(connections - without).toBe(2);
  });

  it('still lists the pending CSRs when the kept connection was cut as status used it again', async () => {
    const view = Promise.resolve();
    expect(await statusPendingCsrs(cluster(), view)).toEqual([{ name: 'csr-m1', node: 'm1' }]);
    const before = connections;
    cutReused = true;
    expect(await statusPendingCsrs(cluster(), view, 2000)).toEqual([{ name: 'csr-m1', node: 'm1' }]);
    expect(cutReused).toBe(false); // the fault did happen
    expect(connections - before).toBe(1); // and the list came over a new connection
  });
});
