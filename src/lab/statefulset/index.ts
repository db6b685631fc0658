import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeCa, makeCert } from '../certs.js';
import { portOpen } from '../harness.js';
import { KubeApi } from '../kube/api.js';
import { kubeRequest, type Credentials, type KubeResponse } from '../kube/client.js';
import { issue } from '../kube/pki.js';
import { ObjectStore, resourceType, type KubeObject } from '../kube/store.js';
import { run, waitFor, type RunResult } from '../proc.js';
import { StatefulSetController } from './controller.js';
import { PodRunner } from './pod-runner.js';
import { etcdPdb, etcdStatefulSet, CERTS_SECRET } from './objects.js';
import { labEtcdctl, parseMemberList } from '../etcdctl.js';

const PODS = resourceType('pods', '')!;
const GIT_VERSION = 'v1.32.4';

export interface StatefulSetLabOptions {
  /** Everything the lab writes lives below this directory; it is wiped at start. */
  root: string;
  /** etcd pods get 127.0.<subnet>.1, .2, …; the admin cluster's API is https://127.0.<subnet>.100:6443. */
  subnet: number;
  replicas?: number;
  /** The user cluster's namespace in the admin cluster (USER_CLUSTER_NAME). */
  namespace?: string;
  clusterName?: string;
  /** How often the controllers and kubelets look (default 200 ms). */
  tickMs?: number;
  log?: (s: string) => void;
}

/**
 * A "kubeception" admin cluster, as GKE on-prem runs a user cluster's control
 * plane: the Kubernetes API stand-in (nodes, the StatefulSet `kube-etcd` with its
 * claims and the PDB `kube-etcd-pdb` in the user cluster's namespace), the
 * StatefulSet controller and scheduler, and kubelets that run each etcd pod as a
 * local process on its own loopback address, its claim a directory. No SSH: the
 * only way in is the API, as for the people who follow the seed procedure.
 */
export class StatefulSetLab {
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;

  constructor(
    readonly opts: Required<Omit<StatefulSetLabOptions, 'log' | 'tickMs'>>,
    readonly store: ObjectStore,
    readonly api: KubeApi,
    private readonly controller: StatefulSetController,
    private readonly runner: PodRunner,
    private readonly server: Server,
    readonly url: string,
    readonly kubeconfig: string,
    readonly admin: Credentials,
    /** The etcd client cert (the bot's). */
    readonly tls: { ca: string; cert: string; key: string },
    readonly inventoryPath: string,
  ) {}

  get namespace(): string {
    return this.opts.namespace;
  }

  podIp(ordinal: number): string {
    return `127.0.${this.opts.subnet}.${ordinal + 1}`;
  }

  podName(ordinal: number): string {
    return `kube-etcd-${ordinal}`;
  }

  get endpoints(): string[] {
    return Array.from({ length: this.opts.replicas }, (_, i) => `https://${this.podIp(i)}:2379`);
  }

  /** The directory behind a claim (a local volume). */
  claimDir(claim: string, namespace = this.namespace): string {
    return join(this.opts.root, 'volumes', namespace, claim);
  }

  /** The PID of a pod's process, or null. */
  pid(pod: string, namespace = this.namespace): number | null {
    return this.runner.pid(namespace, pod);
  }

  pod(name: string, namespace = this.namespace): KubeObject | undefined {
    return this.store.find(PODS, name, namespace);
  }

  kubectl(args: string[], opts: { allowFail?: boolean; input?: string } = {}): Promise<RunResult> {
    return run('kubectl', ['--kubeconfig', this.kubeconfig, '--cache-dir', join(this.opts.root, 'kubectl-cache'), ...args], { allowFail: opts.allowFail, input: opts.input, timeoutMs: 60_000 });
  }

  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<KubeResponse> {
    return kubeRequest(this.url, this.admin, method, path, body, headers);
  }

  etcdctl(args: string[], endpoints: string[] = this.endpoints, allowFail = false): Promise<RunResult> {
    return labEtcdctl(this.tls, endpoints, args, allowFail);
  }

  /** `etcdctl member list` through the first member that answers: IDs in hex. */
  async memberList(): Promise<{ id: string; status: string; name: string; peer: string; client: string; learner: boolean }[]> {
    let first: string | undefined;
    for (const e of this.endpoints) if (await portOpen(new URL(e).hostname, 2379)) (first ??= e);
    if (!first) throw new Error('no etcd pod is listening');
    const { stdout } = await this.etcdctl(['member', 'list'], [first]);
    return parseMemberList(stdout);
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor('every etcd pod healthy', async () => (await this.etcdctl(['endpoint', 'health'], this.endpoints, true)).code === 0, timeoutMs, 250);
  }

  /**
   * Fault: a replica's disk is damaged. Its process is killed, its database
   * overwritten with garbage, and the kubelet keeps restarting it from the same
   * claim: the pod crash-loops, Running but not Ready, as a failed replica does.
   */
  async failReplica(ordinal: number): Promise<void> {
    const name = this.podName(ordinal);
    const db = join(this.claimDir(`data-${name}`), 'member/snap/db');
    const pid = this.pid(name);
    writeFileSync(db, Buffer.alloc(64 * 1024, 0x5a));
    if (pid) process.kill(pid, 'SIGKILL');
    await waitFor(`${name} to crash-loop`, async () => !(await portOpen(this.podIp(ordinal), 2379)) && this.pod(name)?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'False'), 15_000);
  }

  /** One pass of the controllers and kubelets now (after the one in flight). */
  async sync(): Promise<void> {
    while (this.ticking) await this.ticking;
    this.ticking = (async () => {
      this.controller.tick();
      await this.runner.tick();
    })().finally(() => (this.ticking = null));
    await this.ticking;
  }

  /** Fault: the admin cluster's API goes away (its listener closed, open connections cut) until `apiUp`; the pods run on. */
  async apiDown(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  async apiUp(): Promise<void> {
    const { hostname, port } = new URL(this.url);
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(Number(port), hostname, () => resolve()));
  }

  startTicking(ms: number): void {
    this.timer = setInterval(() => {
      if (!this.ticking) void this.sync().catch((err: Error) => this.opts.clusterName && console.error(`statefulset lab: ${err.message}`));
    }, ms);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    while (this.ticking) await this.ticking.catch(() => undefined);
    await this.runner.stop();
    if (!this.server.listening) return;
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

export async function startStatefulSetLab(options: StatefulSetLabOptions): Promise<StatefulSetLab> {
  const o = { replicas: 3, namespace: 'user1', clusterName: 'user1', tickMs: 200, log: () => undefined, ...options };
  const { root, subnet, namespace } = o;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  const podIp = (i: number) => `127.0.${subnet}.${i + 1}`;
  const apiIp = `127.0.${subnet}.100`;
  const url = `https://${apiIp}:6443`;

  // The user cluster's etcd PKI: one serving/peer cert for every pod's address (the Secret kube-etcd-certs), and the bot's client cert.
  const etcdCa = await makeCa(join(root, 'etcd-pki'), 'etcd-ca');
  const ips = Array.from({ length: o.replicas }, (_, i) => podIp(i));
  const member = await makeCert(join(root, 'etcd-pki'), 'etcd', etcdCa, [...ips, '127.0.0.1']);
  const client = await makeCert(join(root, 'etcd-pki'), 'etcd-medic-client', etcdCa, []);
  const secretDir = join(root, 'secrets', namespace, CERTS_SECRET);
  mkdirSync(secretDir, { recursive: true });
  copyFileSync(etcdCa.cert, join(secretDir, 'etcdCA.crt'));
  copyFileSync(member.cert, join(secretDir, 'etcd.crt'));
  copyFileSync(member.key, join(secretDir, 'etcd.key'));

  // The admin cluster's API: its own CA, a serving cert for its address, a cluster-admin client cert.
  const kubeCaFiles = await makeCa(join(root, 'kube-pki'), 'kubernetes', 3650);
  const kubeCa = { ...kubeCaFiles, pem: readFileSync(kubeCaFiles.cert, 'utf8') };
  const serving = await issue(join(root, 'tmp'), kubeCa, { cn: 'kube-apiserver', ips: [apiIp], dns: ['kubernetes'] }, ['digital signature', 'key encipherment', 'server auth']);
  const adminPem = await issue(join(root, 'tmp'), kubeCa, { cn: 'kubernetes-admin', o: ['system:masters'] }, ['digital signature', 'client auth']);
  const admin: Credentials = { ca: kubeCa.pem, cert: adminPem.certPem, key: adminPem.keyPem };

  const store = new ObjectStore();
  const NS = resourceType('namespaces', '')!;
  for (const n of ['default', 'kube-system', namespace]) store.create(NS, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  for (let i = 0; i < o.replicas; i++) {
    store.create(resourceType('nodes', '')!, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `admin-node-${i + 1}`, labels: { 'kubernetes.io/hostname': `admin-node-${i + 1}` } },
      spec: {},
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }],
        addresses: [{ type: 'InternalIP', address: `127.0.${subnet}.${11 + i}` }, { type: 'Hostname', address: `admin-node-${i + 1}` }],
        nodeInfo: { kubeletVersion: GIT_VERSION },
      },
    });
  }
  const token = `lab-${subnet}-${Date.now().toString(36)}`;
  store.create(resourceType('statefulsets', 'apps')!, etcdStatefulSet({ namespace, replicas: o.replicas, podIp, token }));
  store.create(resourceType('poddisruptionbudgets', 'policy')!, etcdPdb(namespace, o.replicas));

  const api = new KubeApi(store, { bootstrapTokens: new Map(), grants: {}, gitVersion: GIT_VERSION, onApproved: () => undefined });
  const server = createServer({ cert: serving.certPem, key: serving.keyPem, ca: kubeCa.pem, requestCert: true, rejectUnauthorized: false }, api.handler({ name: 'admin-apiserver', address: `${apiIp}:6443`, etcdHealthy: async () => true, etcdOk: () => true }));
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => (sockets.add(s), s.once('close', () => sockets.delete(s))));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(6443, apiIp, () => resolve()));

  const kubeconfig = join(root, 'admin.conf');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'admin', cluster: { server: url, 'certificate-authority-data': b64(kubeCa.pem) } }],
      users: [{ name: 'admin', user: { 'client-certificate-data': b64(admin.cert!), 'client-key-data': b64(admin.key!) } }],
      contexts: [{ name: 'admin', context: { cluster: 'admin', user: 'admin' } }],
      'current-context': 'admin',
    }),
    { mode: 0o600 },
  );

  const claimDir = (ns: string, claim: string) => join(root, 'volumes', ns, claim);
  const controller = new StatefulSetController(store, { podIp, claimDir });
  const runner = new PodRunner(
    store,
    (pod, v) => {
      if (v.persistentVolumeClaim) return store.find(resourceType('persistentvolumeclaims', '')!, v.persistentVolumeClaim.claimName, pod.metadata.namespace) ? claimDir(pod.metadata.namespace!, v.persistentVolumeClaim.claimName) : null;
      if (v.secret) return join(root, 'secrets', pod.metadata.namespace!, v.secret.secretName);
      if (v.emptyDir) return (mkdirSync(join(root, 'pods', pod.metadata.uid, v.name), { recursive: true }), join(root, 'pods', pod.metadata.uid, v.name));
      return null;
    },
    join(root, 'logs'),
    o.log,
  );
  const tls = { ca: etcdCa.cert, cert: client.cert, key: client.key };
  const inventoryPath = join(root, 'inventory.yaml');
  const lab = new StatefulSetLab({ root, subnet, replicas: o.replicas, namespace, clusterName: o.clusterName }, store, api, controller, runner, server, url, kubeconfig, admin, tls, inventoryPath);
  writeFileSync(inventoryPath, inventory(lab, join(root, 'backups')));
  try {
    await lab.sync();
    lab.startTicking(o.tickMs);
    await lab.waitHealthy(60_000);
    await waitFor('every kube-etcd pod Ready', () => Array.from({ length: o.replicas }, (_, i) => lab.pod(lab.podName(i))).every((p) => p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')), 20_000);
  } catch (err) {
    await lab.stop();
    throw err;
  }
  o.log(`statefulset lab up: API ${url}, etcd ${lab.endpoints.join(', ')}`);
  return lab;
}

/** The inventory the bot reads for this lab: the user cluster's etcd, reached through the admin cluster's API. */
function inventory(lab: StatefulSetLab, backupsDir: string): string {
  return stringify({
    workspace: { allowedChannels: [], roles: { read: ['*'], operate: ['*'], destroy: ['*'], approve: ['*'] }, approvalTtlMinutes: 15 },
    defaultCluster: lab.opts.clusterName,
    backups: { dir: backupsDir },
    clusters: [
      {
        name: lab.opts.clusterName,
        etcd: { endpoints: lab.endpoints, tls: lab.tls, callTimeoutMs: 2000 },
        platform: { kind: 'statefulset', namespace: lab.namespace, statefulSet: 'kube-etcd', pdb: 'kube-etcd-pdb', container: 'kube-etcd', claimTemplate: 'data', dataMountPath: '/var/lib/etcd' },
        members: Array.from({ length: lab.opts.replicas }, (_, i) => ({ name: lab.podName(i), host: lab.podIp(i) })),
        kubeconfig: lab.kubeconfig,
      },
    ],
  });
}
