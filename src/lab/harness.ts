import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeCa, makeCert } from './certs.js';
import type { HostSupervisor } from './host-supervisor.js';
import type { HostLayout } from './layouts.js';
import { startKube, type KubeLab, type KubeLabOptions } from './kube/index.js';
import { kubeletInventoryPaths } from './kube/kubelet-host.js';
import { layoutOf, type LabPlatform, type NewHost, type OcpVersion } from './layouts.js';
import { waitFor, type RunResult } from './proc.js';
import { makeSshKey, startSshd, type SshdChange, type SshHost } from './sshd.js';
import type { UnitSupervisor } from './unit-supervisor.js';
import { labEtcdctl, parseMemberList } from './etcdctl.js';

export interface LabOptions {
  /** Everything the lab writes lives below this directory; it is wiped at start. */
  root: string;
  /** Hosts get addresses 127.0.<subnet>.1, .2, … so several labs can coexist. */
  subnet: number;
  members?: number;
  sshPort?: number;
  clusterName?: string;
  /** etcd's client and peer ports on every host (default 2379, 2380). */
  clientPort?: number;
  peerPort?: number;
  /** A Kubernetes API stand-in, lab kubelets and a kubeconfig in the inventory (off by default, so other labs stay as they were). */
  kube?: boolean | KubeLabOptions;
  /**
   * Worker nodes w1, w2, … (with `kube`): a host with its own sshd and a kubelet, no etcd,
   * on 127.0.<subnet>.51, .52, …; listed under the cluster's `nodes` in the inventory.
   */
  workers?: number;
  /**
   * How etcd runs on the masters: kubeadm static pods played by a kubelet
   * stand-in (the default), or OpenShift 3 style, a systemd unit reading its
   * flags from /etc/etcd/etcd.conf, driven by a lab `systemctl` over SSH.
   */
  platform?: LabPlatform;
  /** openshift4 masters of 4.1–4.3 (etcd-member.yaml, the default) or 4.4+ (the etcd operator's etcd-pod.yaml). */
  ocpVersion?: OcpVersion;
  /** More flags for every member's etcd, e.g. a small `--quota-backend-bytes` (kubeadm masters only). */
  etcdFlags?: string[];
  log?: (s: string) => void;
}

export interface LabHost {
  name: string;
  ip: string;
  root: string;
  platform: LabPlatform;
  /** How this host is laid out (the platform's, or the OpenShift release's). */
  layout: HostLayout;
  /** Where the kubelet stand-in reads static pods (kubeadm hosts; on systemd hosts nothing reads it and it does not exist). */
  manifestsDir: string;
  dataDir: string;
  pkiDir: string;
  /** systemd hosts: etcd.service's EnvironmentFile (etc/etcd/etcd.conf). */
  confFile?: string;
  /** systemd hosts: unit files and drop-ins (etc/systemd/system). */
  unitDir?: string;
  /** systemd hosts: the API server's master-config.yaml (etc/origin/master), listing etcd's client URLs. */
  masterConfig?: string;
  /** Where a fault moves the manifest to, outside the kubelet's view. */
  parkedDir: string;
  logDir: string;
  /** First on the PATH of commands run over SSH on this host: a fault puts a broken tool here. */
  binDir: string;
  supervisor: HostSupervisor;
  /** systemd hosts: the same supervisor, with the units' states and their history. */
  units?: UnitSupervisor;
  ssh: SshHost;
  clientUrl: string;
  peerUrl: string;
}

export class Lab {
  /** The Kubernetes side, when the lab was started with `kube`. */
  kube: KubeLab | null = null;
  /** The etcd metric signer's CA (certificate and key in the lab's dir), where the layout's masters have one (OpenShift 4.1–4.3). */
  metricCa: { cert: string; key: string } | null = null;

  constructor(
    readonly opts: Required<Omit<LabOptions, 'log'>> & { log: (s: string) => void },
    readonly hosts: LabHost[],
    /** Worker nodes: sshd and a kubelet, no etcd (their supervisor runs nothing; the kubelet's unit is the kube lab's). */
    readonly workers: LabHost[],
    readonly tls: { ca: string; cert: string; key: string },
    readonly sshKey: string,
    readonly inventoryPath: string,
  ) {}

  get endpoints(): string[] {
    return this.hosts.map((h) => h.clientUrl);
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  }

  /** A master or a worker node. */
  node(name: string): LabHost {
    const h = [...this.hosts, ...this.workers].find((x) => x.name === name);
    if (!h) throw new Error(`no lab node ${name}`);
    return h;
  }

  /** etcdctl with the lab's client cert, against the given endpoints (all by default). */
  etcdctl(args: string[], endpoints: string[] = this.endpoints, allowFail = false): Promise<RunResult> {
    return labEtcdctl(this.tls, endpoints, args, allowFail);
  }

  /** The member list exactly as `etcdctl member list` prints it (IDs in hex). */
  async memberList(): Promise<{ id: string; status: string; name: string; peer: string; client: string; learner: boolean }[]> {
    const healthy = await this.firstAnswering();
    const { stdout } = await this.etcdctl(['member', 'list'], [healthy]);
    return parseMemberList(stdout);
  }

  /** The hex ID of the leader, from `etcdctl endpoint status`. */
  async leaderHex(): Promise<string> {
    const { stdout } = await this.etcdctl(['endpoint', 'status', '-w', 'json'], [await this.firstAnswering()]);
    // etcdctl prints uint64 IDs as bare JSON numbers: JSON.parse would round them, so read the digits.
    const leader = /"leader":(\d+)/.exec(stdout)?.[1];
    if (!leader) throw new Error(`no leader in etcdctl output: ${stdout.slice(0, 200)}`);
    return BigInt(leader).toString(16);
  }

  private async firstAnswering(): Promise<string> {
    for (const h of this.hosts) if (await portOpen(h.ip, this.opts.clientPort)) return h.clientUrl;
    throw new Error('no lab member is listening');
  }

  /**
   * Fault: stop a member the way an operator does (kubeadm: its manifest moved
   * away; systemd: `systemctl stop etcd`); waits until it is down.
   */
  async stopMember(name: string): Promise<void> {
    const h = this.host(name);
    h.layout.stopEtcd(h);
    await waitFor(`${name} to stop`, async () => h.supervisor.pid() === null && !(await portOpen(h.ip, this.opts.clientPort)), 15_000);
  }

  /** Fault: the member dies at once (SIGKILL), and neither its kubelet nor systemd restarts it. */
  async killMember(name: string): Promise<void> {
    const h = this.host(name);
    h.layout.killEtcd(h);
    await waitFor(`${name} to die`, async () => h.supervisor.pid() === null && !(await portOpen(h.ip, this.opts.clientPort)), 15_000);
  }

  /**
   * Fault: the member's disk is damaged. Its etcd dies, its database is overwritten
   * with garbage, and the kubelet (or systemd, Restart=always) keeps restarting it
   * from the same configuration, so it crash-loops exactly as a member on a broken disk does.
   */
  async corruptMember(name: string): Promise<void> {
    await this.killMember(name);
    const h = this.host(name);
    writeFileSync(join(h.dataDir, 'member/snap/db'), Buffer.alloc(64 * 1024, 0x5a));
    h.layout.startEtcd(h);
  }

  /**
   * Fault: the member's master is reinstalled. Its etcd dies, and its data dir,
   * its etcd config (manifest or etcd.conf, parked copy included) and its pki
   * dir are gone; the machine keeps its address and its sshd (host key).
   */
  async wipeMember(name: string): Promise<void> {
    await this.killMember(name);
    const h = this.host(name);
    for (const p of [h.dataDir, h.pkiDir, join(h.manifestsDir, 'etcd.yaml'), join(h.parkedDir, 'etcd.yaml'), ...(h.confFile ? [h.confFile] : [])]) rmSync(p, { recursive: true, force: true });
  }

  /** Lets a stopped member run again (a parked manifest back, or `systemctl start etcd`) and waits until it answers on its client port. */
  async startMember(name: string): Promise<void> {
    const h = this.host(name);
    h.layout.startEtcd(h);
    await waitFor(`${name} to start`, () => portOpen(h.ip, this.opts.clientPort), 20_000);
  }

  /** Fault: a host's sshd goes away (its port then refuses connections). */
  async stopSshd(name: string): Promise<void> {
    const h = this.host(name);
    const p = h.ssh.process;
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
    await waitFor(`sshd on ${h.ip} to stop`, async () => !(await portOpen(h.ip, this.opts.sshPort)), 10_000);
  }

  /** Fault: a host's sshd restarts changed: with a new host key, or with tools missing from its sessions' PATH. */
  async restartSshd(name: string, change: SshdChange): Promise<void> {
    const h = this.host(name);
    await this.stopSshd(name);
    h.ssh = await startSshd(join(h.root, 'ssh'), h.ip, this.opts.sshPort, join(this.opts.root, 'ssh', 'authorized_keys'), { binDir: h.binDir, ...change });
    await waitFor(`sshd on ${h.ip}`, () => portOpen(h.ip, this.opts.sshPort), 10_000);
  }

  /** Waits until every member reports healthy through etcdctl (not through the code under test). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor('every lab member healthy', async () => (await this.etcdctl(['endpoint', 'health'], this.endpoints, true)).code === 0, timeoutMs, 250);
  }

  async stop(): Promise<void> {
    await this.kube?.stop();
    await Promise.all(this.hosts.map((h) => h.supervisor.stop()));
    const all = [...this.hosts, ...this.workers];
    for (const h of all) h.ssh.process.kill('SIGTERM');
    await Promise.all(
      all.map((h) =>
        h.ssh.process.exitCode === null && h.ssh.process.signalCode === null
          ? new Promise((r) => h.ssh.process.once('exit', r))
          : undefined,
      ),
    );
  }
}

/** A worker node's supervisor: it runs no etcd (its kubelet unit is run by the kube lab). */
const NO_ETCD: HostSupervisor = { pid: () => null, start: () => undefined, stop: async () => undefined };

export function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Kills processes a previous, crashed run of this lab left behind (they hold its addresses).
 * A unit's process may name no lab path on its command line (etcd reads its flags from
 * the environment), so its environment is searched too.
 */
/** Kills every process that runs from the lab directory `root` (named in its command line or environment). */
export function killLabProcesses(root: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const environ = cmdline.includes(`${root}/`) ? '' : readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (cmdline.includes(`${root}/`) || environ.includes(`=${root}/`)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

export async function startLab(options: LabOptions): Promise<Lab> {
  // etcdFlags after the spread: a caller passing `etcdFlags: undefined` on (the playground's stack) gets none, not a crash.
  const opts = { members: 3, sshPort: 2222, clusterName: 'lab', clientPort: 2379, peerPort: 2380, kube: false, workers: 0, platform: 'kubeadm' as LabPlatform, ocpVersion: '4.3' as OcpVersion, log: () => undefined, ...options, etcdFlags: options.etcdFlags ?? [] };
  const { root, subnet } = opts;
  const layout = layoutOf(opts.platform, opts.ocpVersion);
  if (opts.workers > 0 && !opts.kube) throw new Error('worker nodes need the Kubernetes stand-in (kube: true)');
  if (opts.etcdFlags.length > 0 && opts.platform !== 'kubeadm') throw new Error(`extra etcd flags are written into kubeadm manifests only, not with platform '${opts.platform}'`);
  // The stand-in plays kubeadm's kube-apiserver.yaml, or a layout's own kube-apiserver static pod (OpenShift 4.4+).
  if (opts.kube && opts.platform !== 'kubeadm' && !layout.apiManifest) throw new Error(`the lab's Kubernetes stand-in runs on kubeadm or OpenShift 4.4 masters, not with platform '${opts.platform}'`);
  killLabProcesses(root);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });

  const caDir = join(root, 'ca');
  const ca = await makeCa(caDir);
  const client = await makeCert(caDir, 'etcd-medic-client', ca, []);
  // A second CA where the layout's masters have one (OpenShift 4.1–4.3's etcd metric signer); its key stays in the lab's dir.
  const metricCa = layout.metricCaFile ? await makeCa(join(root, 'metric-ca'), 'etcd-metric-signer') : null;
  const sshKey = join(root, 'ssh', 'id_ed25519');
  mkdirSync(join(root, 'ssh'), { recursive: true });
  await makeSshKey(sshKey, 'etcd-medic-lab');
  const authorizedKeys = join(root, 'ssh', 'authorized_keys');
  copyFileSync(`${sshKey}.pub`, authorizedKeys);

  const names = Array.from({ length: opts.members }, (_, i) => `m${i + 1}`);
  const ipOf = (i: number) => `127.0.${subnet}.${i + 1}`;
  const initialCluster = names.map((n, i) => `${n}=https://${ipOf(i)}:${opts.peerPort}`).join(',');
  const token = `lab-${subnet}-${Date.now().toString(36)}`;
  const endpoints = names.map((_, i) => `https://${ipOf(i)}:${opts.clientPort}`);
  const clientTls = { ca: ca.cert, cert: client.cert, key: client.key };
  const masters = names.map((n, i) => ({ name: n, ip: ipOf(i) }));

  const hosts: LabHost[] = [];
  for (const [i, name] of names.entries()) {
    const ip = ipOf(i);
    const hostRoot = join(root, 'hosts', name);
    const paths = layout.paths(hostRoot);
    const { pkiDir } = paths;
    const parkedDir = join(hostRoot, 'parked');
    const logDir = join(hostRoot, 'var/log');
    const binDir = join(hostRoot, 'usr/local/bin');
    for (const d of [pkiDir, parkedDir, logDir, binDir, join(hostRoot, 'var/lib')]) mkdirSync(d, { recursive: true });
    // One CA, server and peer certs per member (kubeadm's and openshift-ansible's file names are the same; OpenShift 4.1–4.3's are its own).
    copyFileSync(ca.cert, join(pkiDir, 'ca.crt'));
    if (layout.caKeyOnHost) copyFileSync(ca.key, join(pkiDir, 'ca.key'));
    for (const kind of ['server', 'peer'] as const) {
      // Loopback connections leave from 127.0.0.1 whatever address they target, and etcd
      // checks a peer's certificate against the address the connection came from.
      const c = await makeCert(join(hostRoot, 'tmp'), `${name}-${kind}`, ca, [ip, '127.0.0.1']);
      copyFileSync(c.cert, join(pkiDir, layout.certFile?.(name, kind, 'crt') ?? `${kind}.crt`));
      copyFileSync(c.key, join(pkiDir, layout.certFile?.(name, kind, 'key') ?? `${kind}.key`));
    }
    if (metricCa && layout.metricCaFile && layout.metricSubject && layout.certFile) {
      copyFileSync(metricCa.cert, join(pkiDir, layout.metricCaFile));
      const subject = layout.metricSubject(name);
      const c = await makeCert(join(hostRoot, 'tmp'), `${name}-metric`, metricCa, [ip], { days: 30 }, subject);
      copyFileSync(c.cert, join(pkiDir, layout.certFile(name, 'metric', 'crt')));
      copyFileSync(c.key, join(pkiDir, layout.certFile(name, 'metric', 'key')));
    }
    const host: NewHost = { name, ip, root: hostRoot, platform: layout.platform, layout, ...paths, parkedDir, logDir, binDir, clientUrl: endpoints[i]!, peerUrl: `https://${ip}:${opts.peerPort}` };
    const installed = layout.install(host, { initialCluster, token, clientPort: opts.clientPort, peerPort: opts.peerPort, endpoints, clientTls, masters, etcdFlags: opts.etcdFlags });
    const ssh = await startSshd(join(hostRoot, 'ssh'), ip, opts.sshPort, authorizedKeys, { binDir });
    hosts.push({ ...host, ...installed, ssh });
  }
  await layout.prepare?.(hosts, { initialCluster, token, clientPort: opts.clientPort, peerPort: opts.peerPort, endpoints, clientTls, masters });

  // Worker nodes: a host with sshd and (once the kube lab starts) a kubelet; no etcd, so nothing for their supervisor to run.
  const workers: LabHost[] = [];
  for (let i = 0; i < opts.workers; i++) {
    const name = `w${i + 1}`;
    const ip = `127.0.${subnet}.${51 + i}`;
    const hostRoot = join(root, 'hosts', name);
    const paths = layoutOf('kubeadm').paths(hostRoot);
    const dirs = { parkedDir: join(hostRoot, 'parked'), logDir: join(hostRoot, 'var/log'), binDir: join(hostRoot, 'usr/local/bin') };
    for (const d of [paths.manifestsDir, ...Object.values(dirs)]) mkdirSync(d, { recursive: true });
    const ssh = await startSshd(join(hostRoot, 'ssh'), ip, opts.sshPort, authorizedKeys, { binDir: dirs.binDir });
    workers.push({ name, ip, root: hostRoot, platform: 'kubeadm', layout: layoutOf('kubeadm'), ...paths, ...dirs, supervisor: NO_ETCD, ssh, clientUrl: '', peerUrl: '' });
  }

  const inventoryPath = join(root, 'inventory.yaml');
  const kubeconfig = opts.kube ? join(root, 'kube', 'admin.conf') : undefined;
  writeFileSync(inventoryPath, labInventory(opts.clusterName, hosts, workers, clientTls, sshKey, opts.sshPort, join(root, 'backups'), kubeconfig));

  const lab = new Lab(opts, hosts, workers, clientTls, sshKey, inventoryPath);
  lab.metricCa = metricCa;
  for (const h of hosts) h.supervisor.start();
  try {
    await lab.waitHealthy(60_000);
    for (const h of [...hosts, ...workers]) await waitFor(`sshd on ${h.ip}`, () => portOpen(h.ip, opts.sshPort), 10_000);
    if (opts.kube) lab.kube = await startKube(root, hosts, workers, lab.tls, { apiManifest: layout.apiManifest, etcdOperator: layout.etcdOperator, ...(opts.kube === true ? {} : opts.kube) }, opts.log);
  } catch (err) {
    await lab.stop();
    throw err;
  }
  opts.log(`lab up: ${hosts.map((h) => `${h.name}@${h.ip}`).join(', ')}`);
  return lab;
}

/** The inventory the bot reads for this lab: what an operator would write for a real cluster. */
function labInventory(cluster: string, hosts: LabHost[], workers: LabHost[], tls: { ca: string; cert: string; key: string }, sshKey: string, sshPort: number, backupsDir: string, kubeconfig?: string): string {
  return stringify({
    workspace: {
      allowedChannels: [],
      roles: { read: ['*'], operate: ['*'], destroy: ['*'], approve: ['*'] },
      approvalTtlMinutes: 15,
    },
    defaultCluster: cluster,
    backups: { dir: backupsDir },
    clusters: [
      {
        name: cluster,
        etcd: { endpoints: hosts.map((h) => h.clientUrl), tls, callTimeoutMs: 2000 },
        platform: hosts[0]!.layout.inventoryPlatform(),
        members: hosts.map((h) => ({
          name: h.name,
          host: h.ip,
          ssh: { port: sshPort, user: 'root', keyFile: sshKey, hostKeyFingerprint: h.ssh.fingerprint },
          ...h.layout.memberPaths(h),
          ...(kubeconfig ? kubeletInventoryPaths(h.root) : {}),
        })),
        ...(workers.length ? { nodes: workers.map((h) => ({ name: h.name, host: h.ip, ssh: { port: sshPort, user: 'root', keyFile: sshKey, hostKeyFingerprint: h.ssh.fingerprint }, ...kubeletInventoryPaths(h.root) })) } : {}),
        ...(kubeconfig ? { kubeconfig } : {}),
      },
    ],
  });
}
