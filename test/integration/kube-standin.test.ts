import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { portOpen, startLab, type Lab } from '../../src/lab/harness.js';
import type { KubeLab, WatchEvent } from '../../src/lab/kube/index.js';
import { run, waitFor } from '../../src/lab/proc.js';

const CSRS = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/** The certificate a TLS listener presents, read from a real handshake (as an expiry check does). */
function peerCert(host: string, port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, rejectUnauthorized: false }, () => {
      const raw = s.getPeerCertificate().raw;
      s.destroy();
      resolve(new X509Certificate(raw));
    });
    s.once('error', reject);
  });
}

describe('the lab Kubernetes API stand-in, checked with the real kubectl', () => {
  let lab: Lab;
  let kube: KubeLab;
  const kubectlJson = async (...args: string[]) => JSON.parse((await kube.kubectl([...args, '-o', 'json'])).stdout);
  const csrJson = (name: string) => kubectlJson('get', 'csr', name);
  const condition = (o: any, type: string) => (o.status?.conditions ?? []).find((c: any) => c.type === type);
  const nodeReady = async (name: string) => condition(await kubectlJson('get', 'node', name), 'Ready')?.status;

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'kube-standin'), subnet: 85, kube: { grants: { 'lab:viewers': 'view' } } });
    kube = lab.kube!;
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('kubectl sees the three masters Ready with their InternalIPs, their static pods, and the inventory names the kubeconfig', async () => {
    const nodes = await kubectlJson('get', 'nodes');
    expect(nodes.items.map((n: any) => n.metadata.name)).toEqual(['m1', 'm2', 'm3']);
    for (const n of nodes.items) {
      const h = lab.host(n.metadata.name);
      expect(condition(n, 'Ready')).toMatchObject({ status: 'True', reason: 'KubeletReady' });
      expect(n.status.addresses).toContainEqual({ type: 'InternalIP', address: h.ip });
      expect(n.metadata.labels).toHaveProperty('node-role.kubernetes.io/control-plane', '');
      expect(n.status.nodeInfo.kubeletVersion).toBe('v1.32.4');
      expect(n.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    }
    // The server's Table, as a person reads it.
    const table = (await kube.kubectl(['get', 'nodes'])).stdout;
    expect(table.split('\n')[0]).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/);
    expect(table).toMatch(/^m2\s+Ready\s+control-plane\s+\d+s\s+v1\.32\.4$/m);
    const wide = (await kube.kubectl(['get', 'nodes', '-o', 'wide'])).stdout;
    expect(wide).toMatch(new RegExp(`^m3\\s+Ready\\s+control-plane\\s+\\S+\\s+v1\\.32\\.4\\s+${lab.host('m3').ip.replace(/\./g, '\\.')}\\s`, 'm'));

    const pods = (await kube.kubectl(['get', 'pods', '-n', 'kube-system'])).stdout;
    for (const h of ['m1', 'm2', 'm3']) {
      expect(pods).toMatch(new RegExp(`^etcd-${h}\\s+1/1\\s+Running\\s`, 'm'));
      expect(pods).toMatch(new RegExp(`^kube-apiserver-${h}\\s+1/1\\s+Running\\s`, 'm'));
    }
    const inventory = parseYaml(readFileSync(lab.inventoryPath, 'utf8'));
    expect(inventory.clusters[0].kubeconfig).toBe(kube.kubeconfig);
    // Every host's own endpoint answers too (one context each in the kubeconfig).
    const ctx = await kube.kubectl(['--context', 'kubernetes-admin@lab-m3', 'get', 'node', 'm1', '-o', 'name']);
    expect(ctx.stdout.trim()).toBe('node/m1');
  });

  it('serves PDBs, StatefulSets and PVCs to kubectl; drain cordons and evicts through pods/eviction, held by a PDB (429) until it allows', async () => {
    const ns = 'user1';
    // `kubectl create -f` sends the objects as JSON (`create namespace` would send protobuf); the stand-in serves no OpenAPI to validate against.
    const create = (o: unknown) => run('kubectl', ['--kubeconfig', kube.kubeconfig, 'create', '--validate=false', '-f', '-'], { input: JSON.stringify(o) });
    await create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const sts = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'web', namespace: ns },
      spec: {
        replicas: 2,
        serviceName: 'web',
        updateStrategy: { type: 'OnDelete' },
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'web:1', args: ['--state=new', '--port=80'] }, { name: 'side', image: 'side:1' }] } },
      },
    };
    const pdb = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web-pdb', namespace: ns }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } } };
    const pvc = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data-web-0', namespace: ns }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } };
    for (const o of [sts, pdb, pvc]) await create(o);
    const made = await kubectlJson('get', 'statefulset', 'web', '-n', ns);
    expect(made.metadata.generation).toBe(1);
    expect((await kubectlJson('get', 'pvc', 'data-web-0', '-n', ns)).spec.resources.requests.storage).toBe('1Gi');

    // Two Ready pods of the StatefulSet on m1, as its controller would own them.
    for (const i of [0, 1]) {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `web-${i}`, labels: { app: 'web' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: made.metadata.uid, controller: true }] },
        spec: { nodeName: 'm1', containers: [{ name: 'web', image: 'web:1' }] },
      };
      expect((await kube.request('POST', `/api/v1/namespaces/${ns}/pods`, pod)).status).toBe(201);
      const ready = await kube.request('PATCH', `/api/v1/namespaces/${ns}/pods/web-${i}/status`, { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
      expect(ready.status).toBe(200);
    }
    const budget = await kubectlJson('get', 'pdb', 'web-pdb', '-n', ns);
    expect(budget.status).toMatchObject({ currentHealthy: 2, desiredHealthy: 2, expectedPods: 2, disruptionsAllowed: 0 });
    expect((await kube.kubectl(['get', 'pdb', '-n', ns])).stdout).toMatch(/^web-pdb\s+2\s+N\/A\s+0\s+\d+s$/m);
    expect((await kube.kubectl(['get', 'sts', '-n', ns])).stdout).toMatch(/^web\s+0\/2\s+\d+s$/m);

    // Strategic merge: containers merge by name (the sidecar stays), args replaced whole; then a JSON patch guarded by a test op.
    await kube.kubectl(['patch', 'sts', 'web', '-n', ns, '-p', JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'web', args: ['--state=existing', '--port=80'] }] } } } })]);
    let now = await kubectlJson('get', 'sts', 'web', '-n', ns);
    expect(now.spec.template.spec.containers.map((c: any) => [c.name, c.args])).toEqual([['web', ['--state=existing', '--port=80']], ['side', undefined]]);
    expect(now.metadata.generation).toBe(2);
    const stale = await kube.kubectl(['patch', 'sts', 'web', '-n', ns, '--type=json', '-p', JSON.stringify([{ op: 'test', path: '/spec/template/spec/containers/0/args/0', value: '--state=new' }, { op: 'replace', path: '/spec/template/spec/containers/0/args/0', value: '--state=x' }])], { allowFail: true });
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toContain('test failed');
    await kube.kubectl(['patch', 'sts', 'web', '-n', ns, '--type=json', '-p', JSON.stringify([{ op: 'test', path: '/spec/template/spec/containers/0/args/0', value: '--state=existing' }, { op: 'replace', path: '/spec/template/spec/containers/0/args/0', value: '--state=new' }])]);
    now = await kubectlJson('get', 'sts', 'web', '-n', ns);
    expect(now.spec.template.spec.containers[0].args).toEqual(['--state=new', '--port=80']);

    // The PDB allows no disruption: drain cordons m1, then every eviction answers 429 until its timeout.
    const held = await kube.kubectl(['drain', 'm1', '--pod-selector', 'app=web', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=2s'], { allowFail: true });
    expect(held.code).not.toBe(0);
    expect(held.stdout + held.stderr).toContain("Cannot evict pod as it would violate the pod's disruption budget.");
    expect((await kubectlJson('get', 'node', 'm1')).spec.unschedulable).toBe(true);
    expect((await kube.kubectl(['get', 'node', 'm1'])).stdout).toMatch(/^m1\s+Ready,SchedulingDisabled\s/m);
    expect((await kubectlJson('get', 'pods', '-n', ns)).items).toHaveLength(2);
    const raw = await kube.request('POST', `/api/v1/namespaces/${ns}/pods/web-0/eviction`, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'web-0', namespace: ns } });
    expect(raw.status).toBe(429);
    expect(raw.body).toMatchObject({ reason: 'TooManyRequests', details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web-pdb needs 2 healthy pods and has 2 currently' }] } });

    // One disruption allowed: the first eviction goes, the second is held (one healthy pod left, one needed).
    await kube.kubectl(['patch', 'pdb', 'web-pdb', '-n', ns, '--type=merge', '-p', '{"spec":{"minAvailable":1}}']);
    const partly = await kube.kubectl(['drain', 'm1', '--pod-selector', 'app=web', '--timeout=2s'], { allowFail: true });
    expect(partly.stdout).toMatch(/pod\/web-[01] evicted/);
    expect((await kubectlJson('get', 'pods', '-n', ns)).items).toHaveLength(1);
    await kube.kubectl(['delete', 'pdb', 'web-pdb', '-n', ns]);
    expect((await kube.kubectl(['get', 'pdb', '-n', ns], { allowFail: true })).stderr).toContain(`No resources found in ${ns} namespace.`);
    const drained = await kube.kubectl(['drain', 'm1', '--pod-selector', 'app=web', '--timeout=5s']);
    expect(drained.stdout).toContain('node/m1 drained');
    await kube.kubectl(['uncordon', 'm1']);
    expect((await kubectlJson('get', 'node', 'm1')).spec.unschedulable).toBeUndefined();
  });

  it('a re-bootstrapped kubelet files a pending client CSR; kubectl approves it, it is issued, and the serving CSR follows', async () => {
    const name = await kube.rebootstrapKubelet('m2');
    const csr = await csrJson(name);
    // The requestor is who authenticated (the bootstrap token), whatever the client sent.
    expect(csr.spec).toMatchObject({
      signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
      usages: ['digital signature', 'client auth'],
      username: 'system:bootstrap:abcdef',
      groups: ['system:bootstrappers', 'system:bootstrappers:kubeadm:default-node-token', 'system:authenticated'],
    });
    expect(csr.status.conditions ?? []).toEqual([]);
    const subject = await run('openssl', ['req', '-noout', '-subject'], { input: Buffer.from(csr.spec.request, 'base64').toString() });
    expect(subject.stdout.trim()).toBe('subject=O = system:nodes, CN = system:node:m2');
    expect((await kube.kubectl(['get', 'csr'])).stdout).toMatch(new RegExp(`^${name}\\s+\\d+s\\s+kubernetes.io/kube-apiserver-client-kubelet\\s+system:bootstrap:abcdef\\s+<none>\\s+Pending$`, 'm'));
    // While it has no client cert the kubelet posts nothing: its Node goes NotReady.
    await waitFor('m2 NotReady while bootstrapping', async () => (await nodeReady('m2')) === 'Unknown', 5_000, 200);

    const approve = await kube.kubectl(['certificate', 'approve', name]);
    expect(approve.stdout.trim()).toBe(`certificatesigningrequest.certificates.k8s.io/${name} approved`);
    const issued = await waitFor('the client cert issued', async () => ((await csrJson(name)).status.certificate ? csrJson(name) : null), 10_000, 200);
    expect(condition(issued, 'Approved')).toMatchObject({ status: 'True', reason: 'KubectlApprove' });
    const cert = new X509Certificate(Buffer.from(issued.status.certificate, 'base64'));
    expect(cert.subject).toBe('O=system:nodes\nCN=system:node:m2');
    expect((await kube.kubectl(['get', 'csr', name])).stdout).toMatch(/Approved,Issued$/m);

    // With its client cert the kubelet files its serving CSR as the node itself.
    const serving = await waitFor('the serving CSR', () => kube.kubelet('m2').servingCsr, 10_000, 100);
    const s = await csrJson(serving);
    expect(s.spec).toMatchObject({ signerName: 'kubernetes.io/kubelet-serving', usages: ['digital signature', 'server auth'], username: 'system:node:m2', groups: ['system:nodes', 'system:authenticated'] });
    const text = (await run('openssl', ['req', '-noout', '-text'], { input: Buffer.from(s.spec.request, 'base64').toString() })).stdout;
    expect(text).toContain(`DNS:m2, IP Address:${lab.host('m2').ip}`);
    await waitFor('m2 Ready again', async () => (await nodeReady('m2')) === 'True', 5_000, 200);

    await kube.kubectl(['certificate', 'approve', serving]);
    const servingCert = await waitFor('the serving cert issued', async () => (await csrJson(serving)).status.certificate, 10_000, 200);
    // Port 10250 now presents exactly the issued serving cert.
    const issuedServing = new X509Certificate(Buffer.from(servingCert, 'base64'));
    await waitFor('10250 on m2 to present the issued cert', async () => (await peerCert(lab.host('m2').ip, 10250)).fingerprint256 === issuedServing.fingerprint256, 5_000, 100);
  });

  it('a rebuilt master loses its Node object until its new client cert is issued, then registers again', async () => {
    const name = await kube.rebuildMaster('m3');
    expect((await kube.kubectl(['get', 'node', 'm3'], { allowFail: true })).stderr).toContain('Error from server (NotFound): nodes "m3" not found');
    expect(await portOpen(lab.host('m3').ip, 10250)).toBe(false);
    await kube.kubectl(['certificate', 'approve', name]);
    await waitFor('m3 registered and Ready', async () => (await nodeReady('m3').catch(() => null)) === 'True', 10_000, 200);
    const serving = await waitFor('the serving CSR of m3', () => kube.kubelet('m3').servingCsr, 10_000, 100);
    await kube.kubectl(['certificate', 'approve', serving]);
    await waitFor('10250 on m3 open again', () => portOpen(lab.host('m3').ip, 10250), 10_000, 100);
  });

  it('kubectl certificate deny marks a CSR Denied; the API refuses to make it Approved as well', async () => {
    const csr = await kube.fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m9', o: ['system:nodes'] } });
    const deny = await kube.kubectl(['certificate', 'deny', csr.metadata.name]);
    expect(deny.stdout.trim()).toBe(`certificatesigningrequest.certificates.k8s.io/${csr.metadata.name} denied`);
    const denied = await csrJson(csr.metadata.name);
    expect(condition(denied, 'Denied')).toMatchObject({ status: 'True', reason: 'KubectlDeny' });
    expect((await kube.kubectl(['get', 'csr', csr.metadata.name])).stdout).toMatch(/\sDenied$/m);
    const again = await kube.kubectl(['certificate', 'approve', csr.metadata.name], { allowFail: true });
    expect(again.stderr.trim()).toBe(`error: certificate signing request "${csr.metadata.name}" is already Denied`);
    // Appending Approved next to Denied, as a careless client would: 422, and nothing changes.
    const both = { ...denied, status: { conditions: [...denied.status.conditions, { type: 'Approved', status: 'True', reason: 'Test' }] } };
    const r = await kube.request('PUT', `${CSRS}/${csr.metadata.name}/approval`, both);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ kind: 'Status', reason: 'Invalid' });
    expect(r.body.message).toContain('Approved and Denied conditions are mutually exclusive');
    expect(condition(await csrJson(csr.metadata.name), 'Approved')).toBeUndefined();
  });

  it('a watch sees ADDED and MODIFIED, resumes from its last resourceVersion after the connections are cut, and gets 410 once compacted', async () => {
    const list = await kube.request('GET', CSRS);
    expect(list.body.kind).toBe('CertificateSigningRequestList');
    const from = list.body.metadata.resourceVersion as string;
    const seen: WatchEvent[] = [];
    const w1 = kube.watch(`${CSRS}?watch=true&resourceVersion=${from}`, (e) => seen.push(e));
    expect(await w1.status).toBe(200);
    const a = await kube.fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m8', o: ['system:nodes'] } });
    await kube.kubectl(['certificate', 'approve', a.metadata.name]);
    await waitFor('ADDED then MODIFIED of the new CSR', () => seen.some((e) => e.type === 'MODIFIED' && e.object.metadata.name === a.metadata.name), 5_000, 50);
    expect(seen[0]).toMatchObject({ type: 'ADDED', object: { kind: 'CertificateSigningRequest', metadata: { name: a.metadata.name } } });

    // The fault: the API server drops every watch; a CSR arrives while the client is away.
    expect(kube.dropWatches()).toBeGreaterThanOrEqual(1);
    // Cut, not ended cleanly: the client sees the stream aborted.
    expect(await w1.ended).toMatch(/aborted|error/);
    const last = seen[seen.length - 1]!.object.metadata.resourceVersion as string;
    const b = await kube.fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m7', o: ['system:nodes'] } });
    const resumed: WatchEvent[] = [];
    const w2 = kube.watch(`${CSRS}?watch=true&resourceVersion=${last}`, (e) => resumed.push(e));
    await waitFor('the missed CSR replayed', () => resumed.some((e) => e.object.metadata?.name === b.metadata.name), 5_000, 50);
    // Nothing seen before the cut comes again.
    expect(resumed.filter((e) => Number(e.object.metadata.resourceVersion) <= Number(last))).toEqual([]);
    w2.close();

    // kubectl's own watch sees a new CSR arrive, as a person running `kubectl get csr -w` does.
    const child = spawn('kubectl', ['--kubeconfig', kube.kubeconfig, 'get', 'csr', '-w', '--output-watch-events']);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      await waitFor('kubectl get -w listing', () => out.includes(b.metadata.name), 10_000, 50);
      const c = await kube.fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m6', o: ['system:nodes'] } });
      await waitFor('kubectl get -w to show the new CSR', () => new RegExp(`^ADDED\\s+${c.metadata.name}\\s.*Pending`, 'm').test(out), 10_000, 50);
    } finally {
      child.kill();
    }

    // After a compaction a watch from an old version gets the real server's ERROR event: 410 Expired.
    kube.compact();
    const expired: WatchEvent[] = [];
    const w3 = kube.watch(`${CSRS}?watch=true&resourceVersion=${from}`, (e) => expired.push(e));
    expect(await w3.status).toBe(200);
    await w3.ended;
    expect(expired).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }) }]);
  });

  it('answers a stale update 409, an unknown name 404, no client cert 401 and a viewer approving 403, as the real server does', async () => {
    const csr = await kube.fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m5', o: ['system:nodes'] } });
    const stale = await kube.request('GET', `${CSRS}/${csr.metadata.name}`);
    await kube.request('PUT', `${CSRS}/${csr.metadata.name}`, { ...stale.body, metadata: { ...stale.body.metadata, labels: { touched: 'yes' } } });
    const approved = { ...stale.body, status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Test', message: 'stale' }] } };
    const conflict = await kube.request('PUT', `${CSRS}/${csr.metadata.name}/approval`, approved);
    expect(conflict.status).toBe(409);
    expect(conflict.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `Operation cannot be fulfilled on certificatesigningrequests.certificates.k8s.io "${csr.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      reason: 'Conflict',
      details: { name: csr.metadata.name, group: 'certificates.k8s.io', kind: 'certificatesigningrequests' },
      code: 409,
    });

    // The injected fault: the next two approval writes conflict. kubectl re-reads and retries, as it does on a real 409.
    kube.failNextApprovals(2);
    const retried = await kube.kubectl(['certificate', 'approve', csr.metadata.name, '-v=6']);
    expect(retried.stderr.match(/PUT .*\/approval 409 Conflict/g)).toHaveLength(2);
    expect(condition(await csrJson(csr.metadata.name), 'Approved')).toBeDefined();

    const missing = await kube.kubectl(['get', 'csr', 'no-such-csr'], { allowFail: true });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toBe('Error from server (NotFound): certificatesigningrequests.certificates.k8s.io "no-such-csr" not found');

    const anonymous = await kube.request('GET', CSRS, undefined, { as: { ca: kube.ca.pem } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });

    const viewer = await kube.identity('vera', ['lab:viewers']);
    expect((await kube.request('GET', CSRS, undefined, { as: viewer })).status).toBe(200);
    const forbidden = await kube.request('PUT', `${CSRS}/${csr.metadata.name}/approval`, await csrJson(csr.metadata.name), { as: viewer });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.message).toBe(
      `certificatesigningrequests.certificates.k8s.io "${csr.metadata.name}" is forbidden: User "vera" cannot update resource "certificatesigningrequests/approval" in API group "certificates.k8s.io" at the cluster scope`,
    );
  });

  it('a node goes NotReady and its /readyz fails within a bound when its etcd stops or its kube-apiserver manifest is moved away', async () => {
    // Anonymous, as a load balancer's health check asks.
    const readyz = (host: string) => kube.request('GET', '/readyz', undefined, { host, as: { ca: kube.ca.pem } }).catch((e: Error) => ({ status: 0, text: e.message, body: null }));
    expect(await readyz('m3')).toMatchObject({ status: 200, text: 'ok' });

    let t0 = Date.now();
    await lab.stopMember('m3');
    await waitFor('m3 NotReady', async () => (await nodeReady('m3')) === 'Unknown', 5_000, 100);
    const failed = await readyz('m3');
    expect(failed.status).toBe(500);
    expect(failed.text).toContain('[-]etcd failed: reason withheld');
    expect(Date.now() - t0).toBeLessThan(5_000);
    await lab.startMember('m3');
    await waitFor('m3 Ready again', async () => (await nodeReady('m3')) === 'True', 10_000, 100);

    t0 = Date.now();
    await kube.stopApiserver('m2');
    expect(await portOpen(lab.host('m2').ip, 6443)).toBe(false);
    // kubectl still works through the control-plane endpoint, which skips m2.
    await waitFor('m2 NotReady', async () => (await nodeReady('m2')) === 'Unknown', 5_000, 100);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await kube.kubectl(['get', 'pods', '-n', 'kube-system', '-o', 'name'])).stdout).not.toContain('pod/kube-apiserver-m2');
    await kube.startApiserver('m2');
    await waitFor('m2 Ready again', async () => (await nodeReady('m2')) === 'True', 5_000, 100);
    expect(await readyz('m2')).toMatchObject({ status: 200, text: 'ok' });
  });

  it('issues hour-long and already-expired serving certs on 6443 and 10250 for expiry checks', async () => {
    const hour = new Date(Date.now() + 3_600_000);
    await kube.setServingCert('m1', 'kubelet', { notAfter: hour });
    const soon = await peerCert(lab.host('m1').ip, 10250);
    expect(Math.abs(Date.parse(soon.validTo) - hour.getTime())).toBeLessThan(2_000);

    const expiredAt = new Date(Date.now() - 86_400_000);
    await kube.setServingCert('m1', 'apiserver', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: expiredAt });
    try {
      const expired = await peerCert(lab.host('m1').ip, 6443);
      expect(Date.parse(expired.validTo)).toBeLessThan(Date.now());
      // A client that checks the cert refuses it, as kubectl does.
      const r = await kube.kubectl(['--context', 'kubernetes-admin@lab-m1', 'get', 'nodes'], { allowFail: true });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('certificate has expired');
    } finally {
      // The load balancer prefers m1: leave it a valid cert for whatever runs next.
      await kube.setServingCert('m1', 'apiserver', { notAfter: new Date(Date.now() + 86_400_000) });
    }
  });
});
