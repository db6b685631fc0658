import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeCa } from '../certs.js';
import type { LabHost } from '../harness.js';
import { run, waitFor, type RunResult } from '../proc.js';
import { KubeApi } from './api.js';
import { kubeRequest, kubeWatch, type Credentials, type KubeResponse, type WatchEvent } from './client.js';
import { LabKubelet, type KubeletState } from './kubelet.js';
import { installKubeletUnit, kubeletFiles, writeBootstrapConfig } from './kubelet-host.js';
import type { UnitSupervisor } from '../unit-supervisor.js';
import { issue, makeCsr, type Ca, type Subject, type Usage } from './pki.js';
import { CsrSigner } from './signer.js';
import { ObjectStore, resourceType, type KubeObject } from './store.js';

export interface KubeLabOptions {
  /** The API servers' port on every host, and the load balancer's (default 6443). */
  apiPort?: number;
  /** The kubelets' port (default 10250). */
  kubeletPort?: number;
  /** Users or groups given a role beyond the built-in ones, e.g. `{ 'lab:viewers': 'view' }`. */
  grants?: Record<string, 'view' | 'approve'>;
  /** Issue the certificates of approved kubelet CSRs, as kube-controller-manager does (default true). */
  sign?: boolean;
  /** Watch events kept for resuming (default 1000); older versions get 410 Expired. */
  historySize?: number;
  /** How often the kubelets look at their host (default 300 ms). */
  tickMs?: number;
  /**
   * The kube-apiserver static pod the masters' layout writes itself (OpenShift 4's kube-apiserver-pod.yaml):
   * each API server follows that file, and no kubeadm kube-apiserver.yaml is written.
   */
  apiManifest?: string;
  /** Serve OpenShift 4.4+'s etcd operator resource, `etcds.operator.openshift.io/cluster`, as a new cluster has it. */
  etcdOperator?: boolean;
}

export interface FileCsrOptions {
  /** Who files it: a user with groups (the lab makes them a client cert), or the bootstrap token. */
  as: { user: string; groups: string[] } | 'bootstrap';
  subject: Subject;
  signerName?: string;
  usages?: string[];
  keyType?: 'ec' | 'rsa';
  expirationSeconds?: number;
  name?: string;
}

/** The lab load balancer's pool (see KubeLab.setLbPool). */
interface LabLbPool {
  backends: string[] | null;
  balance: 'first' | 'roundrobin';
  next: number;
}

const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const GIT_VERSION = 'v1.32.4';
const API_SERVING: Usage[] = ['digital signature', 'key encipherment', 'server auth'];

/**
 * The lab's Kubernetes side: one object store served by a kube-apiserver "static pod" on
 * each host (https://<host ip>:6443), a TCP load balancer in front of them (the
 * control-plane endpoint, https://127.0.<subnet>.100:6443, which the kubeconfig and the
 * kubelets use), a kubelet per host, and the hooks tests inject faults with.
 */
export class KubeLab {
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private readonly identities = new Map<string, Promise<Credentials>>();

  constructor(
    readonly api: KubeApi,
    readonly kubelets: Map<string, LabKubelet>,
    readonly ca: Ca & { pem: string },
    /** The cluster-admin's kubeconfig (kubeadm's admin.conf): the load balancer as current context, one context per host. */
    readonly kubeconfig: string,
    readonly server: string,
    readonly admin: Credentials,
    readonly bootstrapToken: string,
    private readonly closeLb: () => Promise<void>,
    private readonly dir: string,
    private readonly hostsByName: Map<string, LabHost>,
    private readonly apiPort: number,
    private readonly lbPool: LabLbPool = { backends: null, balance: 'first', next: 0 },
  ) {}

  /**
   * The load balancer's pool, as its config would list it: `ip:port` backends (only the healthy ones get connections)
   * and how it balances; null: the default, every master's API server, the first ready one taking every connection.
   */
  setLbPool(backends: string[] | null, balance: 'first' | 'roundrobin' = 'roundrobin'): void {
    this.lbPool.backends = backends;
    this.lbPool.balance = balance;
    this.lbPool.next = 0;
  }

  get store(): ObjectStore {
    return this.api.store;
  }

  /** A host's own API endpoint, or the load balancer's. */
  url(host?: string): string {
    return host ? `https://${this.hostOf(host).ip}:${this.apiPort}` : this.server;
  }

  /** The real kubectl against the lab, as the cluster admin (its discovery cache kept in the lab's dir). */
  kubectl(args: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> {
    return run('kubectl', ['--kubeconfig', this.kubeconfig, '--cache-dir', join(this.dir, 'kubectl-cache'), ...args], { allowFail: opts.allowFail, timeoutMs: 30_000 });
  }

  /** A client cert (CN user, O groups) signed by the cluster CA: what a user's kubeconfig holds. */
  identity(user: string, groups: string[] = []): Promise<Credentials> {
    const k = JSON.stringify([user, groups]);
    if (!this.identities.has(k)) {
      this.identities.set(k, issue(join(this.dir, 'tmp'), this.ca, { cn: user, o: groups }, ['digital signature', 'client auth']).then((p) => ({ ca: this.ca.pem, cert: p.certPem, key: p.keyPem })));
    }
    return this.identities.get(k)!;
  }

  /** One API request (the cluster admin unless `as` says who), to the load balancer unless `host` names one. */
  request(method: string, path: string, body?: unknown, opts: { as?: Credentials; host?: string; headers?: Record<string, string> } = {}): Promise<KubeResponse> {
    return kubeRequest(this.url(opts.host), opts.as ?? this.admin, method, path, body, opts.headers);
  }

  /** A raw watch stream (newline-delimited events), as client-go's reflector opens one. */
  watch(path: string, onEvent: (e: WatchEvent) => void, opts: { as?: Credentials; host?: string } = {}): ReturnType<typeof kubeWatch> {
    return kubeWatch(this.url(opts.host), opts.as ?? this.admin, path, onEvent);
  }

  /** Files a CSR made with openssl, as the given requestor: the way to make the bad ones a policy must flag. */
  async fileCsr(o: FileCsrOptions): Promise<KubeObject> {
    const { csrPem } = await makeCsr(join(this.dir, 'tmp'), o.subject, o.keyType);
    const creds = o.as === 'bootstrap' ? { ca: this.ca.pem, token: this.bootstrapToken } : await this.identity(o.as.user, o.as.groups);
    const body = {
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: o.name ? { name: o.name } : { generateName: 'csr-' },
      spec: {
        request: Buffer.from(csrPem).toString('base64'),
        signerName: o.signerName ?? 'kubernetes.io/kube-apiserver-client-kubelet',
        usages: o.usages ?? ['digital signature', 'client auth'],
        ...(o.expirationSeconds ? { expirationSeconds: o.expirationSeconds } : {}),
      },
    };
    const r = await kubeRequest(this.server, creds, 'POST', CSR_PATH, body);
    if (r.status !== 201) throw new Error(`filing a CSR answered ${r.status}: ${r.text.slice(0, 300)}`);
    return r.body as KubeObject;
  }

  kubelet(host: string): LabKubelet {
    const k = this.kubelets.get(host);
    if (!k) throw new Error(`no lab kubelet on ${host}`);
    return k;
  }

  /** The kubelet's client cert is gone (expired): it re-bootstraps. Resolves with its pending client CSR's name. */
  rebootstrapKubelet(host: string): Promise<string> {
    return this.kubelet(host).bootstrap(false);
  }

  /**
   * Fault: the kubelet's client certificate expired (the file on the host holds an expired
   * one); its Node goes NotReady. Waits for that; resolves with the expired certificate (PEM).
   */
  async expireKubeletClient(host: string): Promise<string> {
    const pem = await this.kubelet(host).expireClient();
    await waitFor(`node ${host} NotReady`, async () => {
      await this.sync();
      return this.store.find(NODES, host)?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status !== 'True') === true;
    }, 10_000);
    return pem;
  }

  /**
   * Fault: the bootstrap token every host's bootstrap-kubelet.conf holds expired (a kubeadm token lives 24 h): the API
   * server answers 401 to it from now on, so a kubelet without its client certificate cannot file its CSR. `valid` undoes it.
   */
  expireBootstrapToken(valid = false): void {
    const id = this.bootstrapToken.split('.')[0]!;
    if (valid) this.api.opts.bootstrapTokenExpiry?.delete(id);
    else this.api.opts.bootstrapTokenExpiry?.set(id, new Date(Date.now() - 60_000));
  }

  /**
   * Fault: the kubelet binary on a host exits at once with an error (a flag or config it cannot load), so its unit
   * never stays active: systemd restarts it under Restart=always and it never files a CSR. `fixed` puts the binary back;
   * `afterSeconds`: its first start runs that long before it dies (then every start fails at once).
   */
  breakKubelet(host: string, fixed = false, afterSeconds = 0): void {
    this.kubelet(host).setBroken(!fixed, afterSeconds);
  }

  /** The master was rebuilt: Node object deleted, kubelet joins afresh (client CSR, then serving CSR). Resolves with the client CSR's name. */
  rebuildMaster(host: string): Promise<string> {
    return this.kubelet(host).bootstrap(true);
  }

  /** Fault: kube-apiserver stopped by moving its manifest away, as the restore runbooks do; waits until its port refuses. */
  async stopApiserver(host: string): Promise<void> {
    const h = this.hostOf(host);
    const k = this.kubelet(host);
    if (existsSync(k.manifest)) renameSync(k.manifest, join(h.parkedDir, k.apiManifestFile));
    await waitFor(`kube-apiserver on ${host} to stop`, async () => (await this.sync(), !k.apiUp), 10_000);
  }

  async startApiserver(host: string): Promise<void> {
    const h = this.hostOf(host);
    const k = this.kubelet(host);
    const parked = join(h.parkedDir, k.apiManifestFile);
    if (existsSync(parked)) renameSync(parked, k.manifest);
    await waitFor(`kube-apiserver on ${host} to start`, async () => (await this.sync(), k.apiUp), 10_000);
  }

  /**
   * Replaces the serving cert of a host's kube-apiserver (port 6443) or kubelet (port 10250)
   * with one valid over the given window: an hour-long or an already-expired one for expiry checks.
   */
  async setServingCert(host: string, which: 'apiserver' | 'kubelet', validity: { notBefore?: Date; notAfter: Date }): Promise<string> {
    const h = this.hostOf(host);
    const k = this.kubelet(host);
    const subject: Subject = which === 'apiserver' ? apiServerSubject(h, this.server) : { cn: `system:node:${host}`, o: ['system:nodes'], dns: [host], ips: [h.ip] };
    const pem = await issue(join(this.dir, 'tmp'), this.ca, subject, API_SERVING, validity);
    if (which === 'apiserver') k.setApiCert(pem);
    else await k.setServingCert(pem);
    return pem.certPem;
  }

  /** Fault: every open watch connection is cut (clients must resume from their last resourceVersion). */
  dropWatches(): number {
    return this.api.dropWatches();
  }

  /** Fault: the next `n` writes to a CSR's approval subresource answer 409 Conflict. */
  failNextApprovals(n: number): void {
    this.api.failApprovals = n;
  }

  /** Fault: the watch history is compacted away; a watch from an older resourceVersion gets 410 Expired. */
  compact(): void {
    this.store.compact();
  }

  /** Runs one kubelet round on every host now (after the one in flight, if any). */
  async sync(): Promise<void> {
    while (this.ticking) await this.ticking;
    this.ticking = Promise.all([...this.kubelets.values()].map((k) => k.tick()))
      .then(() => undefined)
      .finally(() => (this.ticking = null));
    await this.ticking;
  }

  startTicking(ms: number): void {
    this.timer = setInterval(() => {
      if (!this.ticking) void this.sync().catch(() => undefined);
    }, ms);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    while (this.ticking) await this.ticking.catch(() => undefined);
    await this.closeLb();
    await Promise.all([...this.kubelets.values()].map((k) => k.stop()));
    await Promise.all([...this.kubelets.values()].map((k) => k.units.stop()));
  }

  private hostOf(name: string): LabHost {
    const h = this.hostsByName.get(name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  }
}

function apiServerSubject(h: LabHost, server: string): Subject {
  return {
    cn: 'kube-apiserver',
    ips: [h.ip, new URL(server).hostname, '10.96.0.1'],
    dns: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', h.name],
  };
}

/** kube-apiserver's static-pod manifest, shaped like kubeadm's. */
function apiServerManifest(h: LabHost, port: number): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'kube-apiserver',
      namespace: 'kube-system',
      labels: { component: 'kube-apiserver', tier: 'control-plane' },
      annotations: { 'kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint': `${h.ip}:${port}` },
    },
    spec: {
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      containers: [
        {
          name: 'kube-apiserver',
          image: `registry.k8s.io/kube-apiserver:${GIT_VERSION}`,
          // `args` without `command` (the image's entrypoint): the etcd supervisor runs only manifests
          // with a command, and this pod is played in-process by the lab's kubelet (LabKubelet).
          args: [
            `--advertise-address=${h.ip}`,
            `--secure-port=${port}`,
            `--etcd-servers=${h.clientUrl}`,
            `--etcd-cafile=${h.pkiDir}/ca.crt`,
            '--client-ca-file=/etc/kubernetes/pki/ca.crt',
            '--enable-bootstrap-token-auth=true',
            '--authorization-mode=Node,RBAC',
          ],
        },
      ],
    },
  });
}

/** A quorum read against one member: etcd's /health does a linearizable get, and says false without a leader. */
function etcdHealth(url: string, tls: { ca: string; cert: string; key: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/health`, { ...tls, agent: false, timeout: 1500 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const NODES = resourceType('nodes', '')!;

/**
 * `hosts` are the masters (etcd members, each with a kube-apiserver static pod);
 * `workers` are nodes with a kubelet only. Every one gets a `kubelet` unit that
 * the host's systemctl stand-in starts and stops, and kubeadm's kubelet files.
 */
export async function startKube(root: string, hosts: LabHost[], workers: LabHost[], etcdTls: { ca: string; cert: string; key: string }, o: KubeLabOptions, log: (s: string) => void): Promise<KubeLab> {
  const dir = join(root, 'kube');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const apiPort = o.apiPort ?? 6443;
  const kubeletPort = o.kubeletPort ?? 10250;
  const caFiles = await makeCa(join(dir, 'pki'), 'kubernetes', 3650);
  const ca = { ...caFiles, pem: readFileSync(caFiles.cert, 'utf8') };
  const etcdPem = { ca: readFileSync(etcdTls.ca, 'utf8'), cert: readFileSync(etcdTls.cert, 'utf8'), key: readFileSync(etcdTls.key, 'utf8') };
  const lbIp = hosts[0]!.ip.replace(/\.\d+$/, '.100');
  const server = `https://${lbIp}:${apiPort}`;
  const [tokenId, tokenSecret] = ['abcdef', '0123456789abcdef'];

  const store = new ObjectStore(o.historySize ?? 1000);
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    store.create(resourceType('namespaces', '')!, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  }
  if (o.etcdOperator) {
    store.create(resourceType('etcds', 'operator.openshift.io')!, {
      apiVersion: 'operator.openshift.io/v1',
      kind: 'Etcd',
      metadata: { name: 'cluster', annotations: { 'include.release.openshift.io/self-managed-high-availability': 'true' } },
      spec: { managementState: 'Managed', logLevel: 'Normal', operatorLogLevel: 'Normal' },
      status: { latestAvailableRevision: 3, nodeStatuses: hosts.map((h) => ({ nodeName: h.name, currentRevision: 3 })) },
    });
  }
  const signer = new CsrSigner(store, ca, tmp, log);
  const api = new KubeApi(store, {
    bootstrapTokens: new Map([[tokenId, tokenSecret]]),
    bootstrapTokenExpiry: new Map(),
    grants: o.grants ?? {},
    gitVersion: GIT_VERSION,
    onApproved: (name) => {
      if (o.sign !== false) void signer.sign(name).catch((err: Error) => log(`signing ${name}: ${err.message}`));
    },
  });

  const kubelets = new Map<string, LabKubelet>();
  const token = `${tokenId}.${tokenSecret}`;
  const controlPlaneOk = () => [...kubelets.values()].some((k) => k.apiUp && k.etcdOk);
  for (const [role, list] of [['master', hosts], ['worker', workers]] as const) {
    for (const h of list) {
      if (role === 'master' && !o.apiManifest) writeFileSync(join(h.manifestsDir, 'kube-apiserver.yaml'), apiServerManifest(h, apiPort));
      const apiCert = await issue(tmp, ca, apiServerSubject(h, server), API_SERVING);
      const files = kubeletFiles(h.root);
      writeBootstrapConfig(files, server, ca.pem, token);
      const units: UnitSupervisor = installKubeletUnit(h.name, h.root, h.binDir, h.logDir);
      const etcdOf = role === 'master' ? () => etcdHealth(h.clientUrl, etcdPem) : async () => false;
      kubelets.set(
        h.name,
        new LabKubelet(h, { apiManifest: role === 'master' ? o.apiManifest : undefined, api, ca, caPem: ca.pem, workDir: tmp, apiPort, kubeletPort, gitVersion: GIT_VERSION, controlPlaneUrl: server, bootstrapToken: token, etcdHealth: etcdOf, log, role, files, units, controlPlaneOk }, apiCert),
      );
    }
  }

  // The control-plane endpoint: TCP passthrough, as haproxy in `mode tcp` with /readyz checks. By default it sends to the
  // first API server that is ready (else the first that listens); given a pool (lb.setPool), only to the pool's backends
  // that are healthy: a listed address with no master behind it never passes its health check, so nothing is sent there.
  const lbSockets = new Set<Socket>();
  const pool: LabLbPool = { backends: null, balance: 'first', next: 0 };
  const lb = createServer((sock) => {
    const all = [...kubelets.values()];
    let target: { ip: string } | undefined;
    if (pool.backends) {
      const healthy = pool.backends.filter((b) => all.some((k) => `${k.host.ip}:${apiPort}` === b && k.apiUp && k.etcdOk));
      const pick = pool.balance === 'roundrobin' ? healthy[pool.next++ % Math.max(1, healthy.length)] : healthy[0];
      target = pick ? { ip: pick.replace(/:\d+$/, '') } : undefined;
    } else {
      const k = all.find((x) => x.apiUp && x.etcdOk) ?? all.find((x) => x.apiUp);
      target = k && { ip: k.host.ip };
    }
    if (!target) return sock.destroy();
    const up = connect(apiPort, target.ip);
    for (const s of [sock, up]) {
      lbSockets.add(s);
      s.once('close', () => lbSockets.delete(s));
    }
    sock.pipe(up).pipe(sock);
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
    sock.on('close', () => up.destroy());
    up.on('close', () => sock.destroy());
  });
  const closeLb = async () => {
    const closed = new Promise((r) => lb.close(r));
    for (const s of lbSockets) s.destroy(); // close() alone would wait for the proxied connections
    await closed;
  };
  await new Promise<void>((resolve, reject) => lb.once('error', reject).listen(apiPort, lbIp, () => resolve()));

  const adminPem = await issue(tmp, ca, { cn: 'kubernetes-admin', o: ['system:masters'] }, ['digital signature', 'client auth']);
  const admin: Credentials = { ca: ca.pem, cert: adminPem.certPem, key: adminPem.keyPem };
  const kubeconfig = join(dir, 'admin.conf');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const clusters = [{ name: 'lab', server }, ...hosts.map((h) => ({ name: `lab-${h.name}`, server: `https://${h.ip}:${apiPort}` }))];
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: clusters.map((c) => ({ name: c.name, cluster: { server: c.server, 'certificate-authority-data': b64(ca.pem) } })),
      users: [{ name: 'kubernetes-admin', user: { 'client-certificate-data': b64(admin.cert!), 'client-key-data': b64(admin.key!) } }],
      contexts: clusters.map((c) => ({ name: `kubernetes-admin@${c.name}`, context: { cluster: c.name, user: 'kubernetes-admin' } })),
      'current-context': 'kubernetes-admin@lab',
    }),
    { mode: 0o600 },
  );

  const kube = new KubeLab(api, kubelets, ca, kubeconfig, server, admin, token, closeLb, dir, new Map([...hosts, ...workers].map((h) => [h.name, h])), apiPort, pool);
  try {
    // Each host boots: its systemd starts the enabled kubelet unit, then the kubelet joins.
    for (const k of kubelets.values()) k.units.start();
    await waitFor('every kubelet unit active', async () => [...kubelets.values()].every((k) => k.units.state('kubelet') === 'active'), 20_000);
    for (const k of kubelets.values()) await k.start();
    await waitFor('every lab node Ready', async () => {
      await kube.sync();
      return store.list(NODES).items.every((n) => n.status.conditions.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'));
    }, 20_000);
  } catch (err) {
    await kube.stop();
    throw err;
  }
  kube.startTicking(o.tickMs ?? 300);
  log(`kube API at ${server} (kubeconfig ${kubeconfig})`);
  return kube;
}

export type { KubeletState, Credentials, WatchEvent };
