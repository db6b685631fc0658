import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import type { ClusterConfig } from '../../src/config/schema.js';
import { makeCa, makeCert } from '../../src/lab/certs.js';
import { KubeCluster } from '../../src/kube/client.js';
import { CsrWatch, kubeCsrTransport } from '../../src/kube/csr-watch.js';
import { decideCsr, listPendingCsrs } from '../../src/kube/csrs.js';
import { KubeError, toKubeError } from '../../src/kube/errors.js';
import { listControlPlaneNodes } from '../../src/kube/nodes.js';
import { readyz } from '../../src/kube/readyz.js';

// Real sockets on loopback: a port nothing listens on, and a listener that accepts
// connections and never says a word (a frozen API server, or one behind a black hole).
const dir = mkdtempSync(join(tmpdir(), 'medic-kube-'));
let closedPort: number;
let silent: Server;
let silentPort: number;
const openSockets = new Set<Socket>();
let tls: { ca: string; cert: string; key: string };

function clusterWith(kubeconfig?: string): ClusterConfig {
  const fp = 'SHA256:' + 'A'.repeat(43);
  const inv = parseInventory(
    `clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379"] }
    ${kubeconfig ? `kubeconfig: ${kubeconfig}` : ''}
    members:
      - { name: m1, host: 10.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${fp} } }
`,
    't.yaml',
  );
  return inv.clusters[0]!;
}

/** A kubeconfig with a client certificate, as the lab's and kubeadm's admin.conf are. */
function kubeconfigFor(port: number): string {
  const file = join(dir, `kubeconfig-${port}`);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:${port}", certificate-authority: ${tls.ca} } }]
users: [{ name: u, user: { client-certificate: ${tls.cert}, client-key: ${tls.key} } }]
contexts: [{ name: ctx, context: { cluster: c, user: u } }]
current-context: ctx
`,
  );
  return file;
}

beforeAll(async () => {
  const ca = await makeCa(join(dir, 'ca'));
  const client = await makeCert(join(dir, 'ca'), 'admin', ca, []);
  tls = { ca: ca.cert, cert: client.cert, key: client.key };
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  silent = createServer((s) => {
    openSockets.add(s);
    // Reads (and drops) what the client sends, so that it notices when the client hangs up.
    s.resume();
    s.on('close', () => openSockets.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as { port: number }).port;
});

afterAll(async () => {
  for (const s of openSockets) s.destroy();
  await new Promise((r) => silent.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<{ err: KubeError; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KubeError);
    return { err: err as KubeError, ms: Date.now() - t0 };
  }
  throw new Error('expected the call to fail');
}

async function waitUntil(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('loading a cluster\'s Kubernetes access', () => {
  it('says what to configure when the inventory names no kubeconfig', () => {
    const err = (() => {
      try {
        KubeCluster.forCluster(clusterWith());
      } catch (e) {
        return e as KubeError;
      }
    })();
    expect(err?.kind).toBe('not-configured');
    expect(err?.message).toBe('cluster prod has no Kubernetes access configured: set clusters[].kubeconfig in the inventory to a kubeconfig file (or "in-cluster" when the bot runs in that cluster)');
  });

  it('names the file when the kubeconfig cannot be read', () => {
    expect(() => KubeCluster.forCluster(clusterWith('/nonexistent/kubeconfig'))).toThrow('cluster prod: cannot load the kubeconfig /nonexistent/kubeconfig: ENOENT');
  });

  it('refuses "in-cluster" outside a pod, and takes the service host from the environment inside one', () => {
    const saved = { ...process.env };
    delete process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_PORT;
    expect(() => KubeCluster.forCluster(clusterWith('in-cluster'))).toThrow('kubeconfig is "in-cluster", but KUBERNETES_SERVICE_HOST/PORT are not set');
    process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    try {
      const k = KubeCluster.forCluster(clusterWith('in-cluster'));
      expect(k.server).toBe('https://10.96.0.1:443');
      expect(k.source).toBe('in-cluster');
    } finally {
      process.env = saved;
    }
  });

  it('reads the server of the kubeconfig\'s current context', () => {
    const k = KubeCluster.forCluster(clusterWith(kubeconfigFor(6443)));
    expect(k.server).toBe('https://127.0.0.1:6443');
    expect(k.where).toBe('127.0.0.1:6443');
  });
});

describe('an API server that is down', () => {
  it('refused: every call fails at once saying nothing listens there', async () => {
    const k = KubeCluster.forCluster(clusterWith(kubeconfigFor(closedPort)), { timeoutMs: 5000 });
    const { err, ms } = await failure(listPendingCsrs(k));
    expect(err.kind).toBe('refused');
    expect(err.reason).toBe(`connection refused (127.0.0.1:${closedPort}): the API server is not running or not listening there`);
    expect(ms).toBeLessThan(1000);
    expect((await failure(listControlPlaneNodes(k))).err.kind).toBe('refused');
  });

  it('silent: a call gives up at its timeout with the reason, and closes its connection', async () => {
    const k = KubeCluster.forCluster(clusterWith(kubeconfigFor(silentPort)), { timeoutMs: 800 });
    const { err, ms } = await failure(listPendingCsrs(k));
    expect(err.kind).toBe('timeout');
    expect(err.reason).toBe(`no answer from 127.0.0.1:${silentPort} within 0.8 s`);
    expect(ms).toBeGreaterThanOrEqual(790);
    expect(ms).toBeLessThan(2000);
    // The request was aborted, not left hanging: the server sees the connection closed.
    await waitUntil('the aborted connection to close', () => openSockets.size === 0);
  });

  it('an approval against a silent server is refused with the reason, never thrown', async () => {
    const k = KubeCluster.forCluster(clusterWith(kubeconfigFor(silentPort)), { timeoutMs: 600 });
    const t0 = Date.now();
    const res = await decideCsr(k, { name: 'csr-abc', decision: 'approve', by: '@alice' });
    expect(res).toEqual({ ok: false, refusal: 'timeout', message: `no answer from 127.0.0.1:${silentPort} within 0.6 s`, attempts: 1 });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('/readyz of a master that is down or frozen says which, within the timeout', async () => {
    const k = KubeCluster.forCluster(clusterWith(kubeconfigFor(closedPort)), { timeoutMs: 700 });
    const refused = await readyz(k, `https://127.0.0.1:${closedPort}`);
    expect(refused.ok).toBe(false);
    expect('error' in refused && refused.error.kind).toBe('refused');
    const frozen = await readyz(k, `https://127.0.0.1:${silentPort}`);
    expect('error' in frozen && frozen.error.reason).toBe(`no answer from 127.0.0.1:${silentPort} within 0.7 s`);
    expect(frozen.tookMs).toBeLessThan(2000);
    await waitUntil('the readyz connection to close', () => openSockets.size === 0);
  });

  it('a CSR watch on a silent server reports the timeout and keeps trying', async () => {
    const k = KubeCluster.forCluster(clusterWith(kubeconfigFor(silentPort)), { timeoutMs: 500 });
    const t = kubeCsrTransport(k);
    // client-node's Watch alone would wait for headers forever here; the kubeconfig bounds it.
    const t0 = Date.now();
    const err = await new Promise<unknown>((resolve) => void t.watch('1', () => undefined, resolve));
    expect((err as KubeError).reason).toBe(`no answer from 127.0.0.1:${silentPort} within 0.5 s`);
    expect(Date.now() - t0).toBeLessThan(2000);

    // The whole loop: the list times out, it says so, backs off and tries again.
    const errors: string[] = [];
    const w = new CsrWatch(t, { onEvent: () => undefined, onError: (e) => errors.push(e.reason), backoffMs: { initial: 50, max: 100 } });
    w.start();
    await waitUntil('two failed attempts', () => errors.length >= 2, 5000);
    await w.stop();
    expect(errors[0]).toBe(`no answer from 127.0.0.1:${silentPort} within 0.5 s`);
    await waitUntil('every connection closed', () => openSockets.size === 0);
  });
});

describe('answers of the API server, as short reasons', () => {
  const status = (code: number, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code });
  it.each([
    [401, undefined, 'unauthorized', 'unauthorized (401): the API server does not accept the credentials of the kubeconfig'],
    [403, status(403, 'certificatesigningrequests.certificates.k8s.io "csr-1" is forbidden: User "medic" cannot update resource "certificatesigningrequests/approval"'), 'forbidden', 'forbidden (403): certificatesigningrequests.certificates.k8s.io "csr-1" is forbidden: User "medic" cannot update resource "certificatesigningrequests/approval"'],
    [404, status(404, 'certificatesigningrequests.certificates.k8s.io "csr-x" not found'), 'not-found', 'not found (404): certificatesigningrequests.certificates.k8s.io "csr-x" not found'],
    [409, status(409, 'Operation cannot be fulfilled on certificatesigningrequests.certificates.k8s.io "csr-1": the object has been modified; please apply your changes to the latest version and try again'), 'conflict', 'conflict (409): changed meanwhile: Operation cannot be fulfilled on certificatesigningrequests.certificates.k8s.io "csr-1": the object has been modified; please apply your changes to the latest version and try again'],
    [500, 'etcdserver: request timed out', 'error', 'HTTP 500: etcdserver: request timed out'],
  ] as const)('%i', (code, body, kind, reason) => {
    const e = toKubeError(new ApiException(code, 'x', body, {}), '10.0.0.1:6443', 5000);
    expect(e.kind).toBe(kind);
    expect(e.reason).toBe(reason);
    expect(e.status).toBe(code);
  });
});
