import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttps, type Server } from 'node:https';
import { release } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { LabHost } from '../harness.js';
import type { KubeApi } from './api.js';
import { kubeRequest, type Credentials } from './client.js';
import { issue, makeCsr, type Ca, type Usage } from './pki.js';
import { resourceType, type ObjectInput } from './store.js';
import type { UnitSupervisor } from '../unit-supervisor.js';
import { KUBELET_EXE, readBootstrapToken, readKubeletCredentials, writeKubeletCredentials, type KubeletFiles } from './kubelet-host.js';

const NODES = resourceType('nodes', '')!;
const PODS = resourceType('pods', '')!;
const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const SERVING: Usage[] = ['digital signature', 'key encipherment', 'server auth'];

export interface KubeletDeps {
  api: KubeApi;
  ca: Ca;
  caPem: string;
  workDir: string;
  apiPort: number;
  kubeletPort: number;
  gitVersion: string;
  /** Where the kubelet's kubeconfig points: the control-plane endpoint (kubeadm 1.32's default). */
  controlPlaneUrl: string;
  bootstrapToken: string;
  etcdHealth(): Promise<boolean>;
  log(s: string): void;
  /** A master runs the kube-apiserver static pod and carries the control-plane labels; a worker runs neither. */
  role: 'master' | 'worker';
  /** Its credentials on the host: what it starts from, and what it writes once a CSR is issued. */
  files: KubeletFiles;
  /** The host's systemd stand-in: the kubelet runs while its `kubelet` unit is active. */
  units: UnitSupervisor;
  /** Whether some master's API server answers with etcd behind it (what a worker's kubelet posts its status to). */
  controlPlaneOk(): boolean;
  /** The static pod the API server follows, where it is not kubeadm's kube-apiserver.yaml. */
  apiManifest?: string;
}

/** stopped: its unit is inactive (`systemctl stop kubelet`); denied: its CSR was denied, or it has nothing to bootstrap with. */
export type KubeletState = 'running' | 'bootstrapping' | 'denied' | 'stopped';
type Pem = { certPem: string; keyPem: string };

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Plays one host's kubelet for the Kubernetes side: it runs the kube-apiserver static pod
 * (an HTTPS listener on the host's port 6443 that exists while `kube-apiserver.yaml` is in
 * the manifests dir), keeps the Node object and the mirror pods of the static pods, serves
 * port 10250 with its serving cert, and bootstraps its credentials through real CSRs.
 */
export class LabKubelet {
  state: KubeletState = 'running';
  clientCsr: string | null = null;
  servingCsr: string | null = null;
  apiUp = false;
  etcdOk = false;
  private readonly apiServer: Server;
  private readonly kubeletServer: Server;
  private kubeletListening = false;
  private client: Pem | null = null;
  servingCert: Pem | null = null;
  private gen = 0;
  private stopped = false;

  constructor(
    readonly host: LabHost,
    private readonly d: KubeletDeps,
    public apiCert: Pem,
  ) {
    // requestCert without rejecting: a client without a valid cert gets the API's 401, not a failed handshake.
    this.apiServer = createHttps({ cert: apiCert.certPem, key: apiCert.keyPem, ca: d.caPem, requestCert: true, rejectUnauthorized: false }, d.api.handler({
      name: host.name,
      address: `${host.ip}:${d.apiPort}`,
      etcdHealthy: () => d.etcdHealth(),
      etcdOk: () => this.etcdOk,
    }));
    this.kubeletServer = createHttps({ requestCert: false }, (req, res) => {
      res.writeHead(req.url === '/healthz' ? 200 : 401, { 'Content-Type': 'text/plain' });
      res.end(req.url === '/healthz' ? 'ok' : 'Unauthorized');
    });
  }

  /** The host's systemd stand-in, whose `kubelet` unit this kubelet follows. */
  get units(): UnitSupervisor {
    return this.d.units;
  }

  get manifest(): string {
    return join(this.host.manifestsDir, this.apiManifestFile);
  }

  /** kubeadm's kube-apiserver.yaml, or the one the host's layout has (OpenShift 4's kube-apiserver-pod.yaml). */
  get apiManifestFile(): string {
    return this.d.apiManifest ?? 'kube-apiserver.yaml';
  }

  /** Credentials of this node's kubelet (system:node:<name>), once it has a client cert. */
  get credentials(): Credentials | null {
    return this.client && { ca: this.d.caPem, cert: this.client.certPem, key: this.client.keyPem };
  }

  /** Joined as kubeadm leaves a master: client and serving certs issued, the Node registered. */
  async start(): Promise<void> {
    const s = { cn: `system:node:${this.host.name}`, o: ['system:nodes'] };
    this.client = await issue(this.d.workDir, this.d.ca, s, ['digital signature', 'client auth']);
    writeKubeletCredentials(this.d.files, this.d.controlPlaneUrl, this.d.caPem, this.client);
    await this.setServingCert(await issue(this.d.workDir, this.d.ca, { ...s, dns: [this.host.name], ips: [this.host.ip] }, SERVING));
    this.d.api.store.create(NODES, this.nodeObject());
    await this.tick();
  }

  /** Replaces the kubelet's serving cert on port 10250 (opens the port on the first one). */
  async setServingCert(pem: Pem): Promise<void> {
    this.servingCert = pem;
    this.kubeletServer.setSecureContext({ cert: pem.certPem, key: pem.keyPem });
    if (!this.kubeletListening) {
      await new Promise<void>((resolve, reject) => this.kubeletServer.once('error', reject).listen(this.d.kubeletPort, this.host.ip, () => resolve()));
      this.kubeletListening = true;
    }
  }

  /** Replaces the kube-apiserver's serving cert (new handshakes see it at once). */
  setApiCert(pem: Pem): void {
    this.apiCert = pem;
    this.apiServer.setSecureContext({ cert: pem.certPem, key: pem.keyPem, ca: this.d.caPem });
  }

  /**
   * Fault: the kubelet's client certificate expired (the cluster was off past its rotation):
   * the file on the host now holds an expired one, and the kubelet can no longer post its
   * status, so its Node goes NotReady. Resolves with the expired certificate (PEM).
   */
  async expireClient(): Promise<string> {
    const s = { cn: `system:node:${this.host.name}`, o: ['system:nodes'] };
    const day = 24 * 3600_000;
    const pem = await issue(this.d.workDir, this.d.ca, s, ['digital signature', 'client auth'], { notBefore: new Date(Date.now() - 366 * day), notAfter: new Date(Date.now() - day) });
    writeKubeletCredentials(this.d.files, this.d.controlPlaneUrl, this.d.caPem, pem);
    this.client = pem;
    this.clientNotAfter = new Date(Date.now() - day);
    return pem.certPem;
  }

  private clientNotAfter: Date | null = null;
  /** The unit's main process as last seen: another one means the kubelet was restarted. */
  private unitPid: number | null = null;
  /** The kubelet binary exits at start (see setBroken): the unit flaps and the kubelet does nothing. */
  private broken = false;

  /**
   * Fault: the kubelet binary on the host is replaced by one that exits with an error right after it starts (as a
   * kubelet that cannot load its flags or config does), so its unit goes to auto-restart and never stays active; its
   * work here stops with it. Set back, the unit's own binary returns and the next start runs it.
   */
  setBroken(broken: boolean, afterSeconds = 0): void {
    this.broken = broken;
    const exe = join(this.host.binDir, 'kubelet');
    const ran = join(this.host.binDir, '.kubelet-ran-once');
    const fail = 'sleep 0.3\necho "E run.go:72] command failed: failed to load kubelet config file, path: /var/lib/kubelet/config.yaml" >&2\nexit 1\n';
    // `afterSeconds`: its first start runs that long before it dies (a kubelet that fails later, on the runtime), then each exits at once.
    const script = afterSeconds > 0 ? `if [ ! -e ${ran} ]; then touch ${ran}; sleep ${afterSeconds}; exit 1; fi\n${fail}` : fail;
    rmSync(ran, { force: true });
    writeFileSync(exe, broken ? `#!/bin/bash\n# The lab kubelet, broken: it cannot load its config and exits.\n${script}` : KUBELET_EXE);
    chmodSync(exe, 0o755);
  }

  /**
   * The kubelet follows its unit: stopped with it, and started with it from the
   * files on the host, as a real kubelet starts: with a client certificate and
   * kubeconfig it runs on them; without, it bootstraps with the token of its
   * bootstrap kubeconfig (client CSR, then serving CSR).
   */
  private followUnit(): void {
    // A broken kubelet's process exits as soon as it starts: it never runs long enough to do a kubelet's work.
    const active = this.d.units.state('kubelet') === 'active' && !this.broken;
    // `systemctl restart kubelet` between two ticks: a new process, which loads its files afresh as a real kubelet does.
    const pid = this.d.units.pid('kubelet');
    const restarted = active && this.unitPid !== null && pid !== null && pid !== this.unitPid;
    this.unitPid = pid;
    if ((!active || restarted) && this.state !== 'stopped') {
      this.gen++; // its CSR loops end
      this.state = 'stopped';
      this.client = null;
      this.clientCsr = this.servingCsr = null;
      this.d.log(`kubelet ${this.host.name}: stopped with its unit`);
    }
    if (active && this.state === 'stopped') {
      const creds = readKubeletCredentials(this.d.files);
      if ('missing' in creds) {
        const token = readBootstrapToken(this.d.files);
        if (!token) {
          this.state = 'denied';
          this.d.log(`kubelet ${this.host.name}: no ${creds.missing} and no bootstrap kubeconfig at ${this.d.files.bootstrapConfig}: cannot start`);
          return;
        }
        this.d.log(`kubelet ${this.host.name}: started without ${creds.missing}: bootstrapping`);
        void this.bootstrap(false, token).catch((err: Error) => this.d.log(`kubelet ${this.host.name}: ${err.message}`));
      } else {
        this.client = { certPem: creds.certPem, keyPem: creds.keyPem };
        this.clientNotAfter = creds.notAfter;
        this.state = 'running';
      }
    }
  }

  /** One round of what the kubelet does on its own: the API server pod follows its manifest, Node and mirror pods follow reality. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    this.followUnit();
    const want = existsSync(this.manifest);
    if (want && !this.apiUp) {
      await new Promise<void>((resolve, reject) => this.apiServer.once('error', reject).listen(this.d.apiPort, this.host.ip, () => resolve()));
      this.apiUp = true;
    } else if (!want && this.apiUp) {
      // The pod is gone: its port refuses connections and every open connection (watches too) is cut.
      this.apiUp = false;
      const closed = new Promise((r) => this.apiServer.close(r));
      this.apiServer.closeAllConnections();
      await closed;
    }
    this.etcdOk = this.apiUp && (await this.d.etcdHealth());
    if (this.stopped) return;
    // A kubelet without credentials (or with expired ones) posts nothing: the node lifecycle controller marks its Node Unknown.
    const valid = this.client !== null && (this.clientNotAfter === null || this.clientNotAfter.getTime() > Date.now());
    const reachable = this.d.role === 'master' ? this.apiUp && this.etcdOk : this.d.controlPlaneOk();
    this.updateNode(this.state === 'running' && valid && reachable);
    if (this.state === 'running' && this.d.role === 'master') this.updateMirrorPods();
  }

  private updateNode(ready: boolean): void {
    const store = this.d.api.store;
    const cur = store.find(NODES, this.host.name);
    if (!cur) return;
    const old = (cur.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
    const status = ready ? 'True' : 'Unknown';
    // Only a change is written: a heartbeat every tick would flood every watch.
    if (old?.status === status) return;
    const cond = ready
      ? { type: 'Ready', status, reason: 'KubeletReady', message: 'kubelet is posting ready status' }
      : { type: 'Ready', status, reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' };
    const conditions = [...(cur.status?.conditions ?? []).filter((c: any) => c.type !== 'Ready'), { ...cond, lastHeartbeatTime: now(), lastTransitionTime: now() }];
    store.update(NODES, this.host.name, undefined, { ...cur, status: { ...cur.status, conditions } });
  }

  /** Mirror pods of the static pods, named `<pod>-<node>` in kube-system, as the kubelet posts them. */
  private updateMirrorPods(): void {
    const store = this.d.api.store;
    for (const [file, running] of [['etcd.yaml', this.host.supervisor.pid('etcd.yaml') !== null], [this.apiManifestFile, this.apiUp]] as const) {
      let doc: any = null;
      try {
        doc = parseYaml(readFileSync(join(this.host.manifestsDir, file), 'utf8'));
      } catch {
        /* manifest moved away */
      }
      const base = file.replace(/\.yaml$/, '');
      const name = `${doc?.metadata?.name ?? base}-${this.host.name}`;
      const cur = store.find(PODS, name, 'kube-system');
      if (!doc) {
        if (cur) store.delete(PODS, name, 'kube-system');
        continue;
      }
      const hash = createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 32);
      const startedAt = cur?.status?.containerStatuses?.[0]?.state?.running?.startedAt ?? now();
      const pod: ObjectInput = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          ...(cur?.metadata ?? {}),
          name,
          namespace: 'kube-system',
          labels: doc.metadata?.labels ?? {},
          annotations: { ...(doc.metadata?.annotations ?? {}), 'kubernetes.io/config.hash': hash, 'kubernetes.io/config.mirror': hash, 'kubernetes.io/config.source': 'file' },
          ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.host.name, uid: store.find(NODES, this.host.name)?.metadata.uid ?? '', controller: true }],
        },
        spec: { ...doc.spec, nodeName: this.host.name },
        status: {
          phase: running ? 'Running' : 'Pending',
          hostIP: this.host.ip,
          podIP: this.host.ip,
          conditions: [{ type: 'Ready', status: running ? 'True' : 'False' }],
          containerStatuses: (doc.spec?.containers ?? []).map((c: any) => ({
            name: c.name,
            image: c.image,
            ready: running,
            started: running,
            restartCount: 0,
            state: running ? { running: { startedAt } } : { waiting: { reason: 'CrashLoopBackOff' } },
          })),
        },
      };
      if (cur) store.update(PODS, name, 'kube-system', pod);
      else store.create(PODS, pod);
    }
  }

  /**
   * The kubelet lost its client cert (or the master was rebuilt: then its Node object and
   * serving cert are gone too): it files a client CSR with the bootstrap token and, once
   * that is issued, registers its Node if needed and files its serving CSR as
   * system:node:<name>. Resolves with the client CSR's name once it is filed.
   */
  async bootstrap(rebuild: boolean, token = this.d.bootstrapToken): Promise<string> {
    const gen = ++this.gen;
    this.state = 'bootstrapping';
    this.client = null;
    this.clientNotAfter = null;
    this.clientCsr = this.servingCsr = null;
    if (rebuild) {
      const store = this.d.api.store;
      if (store.find(NODES, this.host.name)) store.delete(NODES, this.host.name);
      // The garbage collector removes the pods the deleted Node owned.
      for (const p of store.list(PODS, 'kube-system').items) if (p.spec?.nodeName === this.host.name) store.delete(PODS, p.metadata.name, 'kube-system');
      this.servingCert = null;
      if (this.kubeletListening) {
        this.kubeletListening = false;
        const closed = new Promise((r) => this.kubeletServer.close(r));
        this.kubeletServer.closeAllConnections();
        await closed;
      }
    }
    const subject = { cn: `system:node:${this.host.name}`, o: ['system:nodes'] };
    const key = await makeCsr(this.d.workDir, subject);
    const bootstrap: Credentials = { ca: this.d.caPem, token };
    const created = await this.file(gen, bootstrap, key.csrPem, 'kubernetes.io/kube-apiserver-client-kubelet', ['digital signature', 'client auth']);
    this.clientCsr = created;
    void (async () => {
      const cert = await this.waitIssued(gen, bootstrap, created);
      if (!cert) return;
      this.client = { certPem: cert, keyPem: key.keyPem };
      this.state = 'running';
      // As the kubelet does once its CSR is issued: the new certificate in its pki dir, its kubeconfig written.
      writeKubeletCredentials(this.d.files, this.d.controlPlaneUrl, this.d.caPem, this.client);
      if (!this.d.api.store.find(NODES, this.host.name)) this.d.api.store.create(NODES, this.nodeObject());
      const s = await makeCsr(this.d.workDir, { ...subject, dns: [this.host.name], ips: [this.host.ip] });
      const creds = this.credentials!;
      this.servingCsr = await this.file(gen, creds, s.csrPem, 'kubernetes.io/kubelet-serving', ['digital signature', 'server auth']);
      const serving = await this.waitIssued(gen, creds, this.servingCsr);
      if (serving && gen === this.gen) await this.setServingCert({ certPem: serving, keyPem: s.keyPem });
    })().catch((err: Error) => this.d.log(`kubelet ${this.host.name}: ${err.message}`));
    return created;
  }

  private async file(gen: number, creds: Credentials, csrPem: string, signerName: string, usages: Usage[]): Promise<string> {
    const body = { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { generateName: 'csr-' }, spec: { request: Buffer.from(csrPem).toString('base64'), signerName, usages } };
    const deadline = Date.now() + 30_000;
    let last = '';
    while (gen === this.gen && !this.stopped && Date.now() < deadline) {
      const r = await kubeRequest(this.d.controlPlaneUrl, creds, 'POST', CSR_PATH, body).catch((e: Error) => ({ status: 0, body: null, text: e.message }));
      if (r.status === 201) return r.body.metadata.name as string;
      last = `${r.status} ${r.text.slice(0, 200)}`;
      await sleep(300);
    }
    throw new Error(`kubelet ${this.host.name} could not file its ${signerName} CSR: ${last || 'superseded'}`);
  }

  /** Polls its CSR as the real kubelet watches it: the issued PEM, or null when denied, failed or superseded. */
  private async waitIssued(gen: number, creds: Credentials, name: string): Promise<string | null> {
    while (gen === this.gen && !this.stopped) {
      const r = await kubeRequest(this.d.controlPlaneUrl, creds, 'GET', `${CSR_PATH}/${name}`).catch(() => null);
      if (r?.status === 200) {
        if (r.body.status?.certificate) return Buffer.from(r.body.status.certificate, 'base64').toString();
        if ((r.body.status?.conditions ?? []).some((c: any) => c.type === 'Denied' || c.type === 'Failed')) {
          this.state = this.client ? 'running' : 'denied';
          return null;
        }
      }
      await sleep(250);
    }
    return null;
  }

  nodeObject(): ObjectInput {
    const master = this.d.role === 'master';
    const os = existsSync('/etc/os-release') ? /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] : undefined;
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.host.name,
        labels: {
          'kubernetes.io/hostname': this.host.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          ...(master ? { 'node-role.kubernetes.io/control-plane': '', 'node.kubernetes.io/exclude-from-external-load-balancers': '' } : {}),
        },
        annotations: { 'kubeadm.alpha.kubernetes.io/cri-socket': 'unix:///var/run/containerd/containerd.sock' },
      },
      spec: master ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } : {},
      status: {
        addresses: [
          { type: 'InternalIP', address: this.host.ip },
          { type: 'Hostname', address: this.host.name },
        ],
        conditions: [
          { type: 'Ready', status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', lastHeartbeatTime: now(), lastTransitionTime: now() },
        ],
        daemonEndpoints: { kubeletEndpoint: { Port: this.d.kubeletPort } },
        nodeInfo: {
          kubeletVersion: this.d.gitVersion,
          kubeProxyVersion: this.d.gitVersion,
          osImage: os ?? 'Debian GNU/Linux 12 (bookworm)',
          kernelVersion: release(),
          containerRuntimeVersion: 'containerd://1.7.24',
          operatingSystem: 'linux',
          architecture: 'amd64',
        },
      },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.gen++;
    for (const [server, on] of [[this.apiServer, this.apiUp], [this.kubeletServer, this.kubeletListening]] as const) {
      if (!on) continue;
      const closed = new Promise((r) => server.close(r));
      server.closeAllConnections();
      await closed;
    }
    this.apiUp = this.kubeletListening = false;
  }
}
