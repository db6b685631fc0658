import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LabHost } from './harness.js';
import type { HostSupervisor } from './host-supervisor.js';
import { etcdManifest } from './manifest.js';
import { apiSysconfig, apiUnit, etcdConf, etcdUnit, masterConfig } from './openshift.js';
import { CONTROL_PLANE_PODS, controlPlaneManifest, discoverInitialClusterScript, discoveryEnvironment, etcdMemberManifest, etcdPodManifest, labEtcdDnsName, ocp4CertFile } from './openshift4.js';
import { bootstrapDataDirs } from './seed-data.js';
import { StaticPodSupervisor } from './supervisor.js';
import { installSystemctl } from './systemctl.js';
import { UnitSupervisor } from './unit-supervisor.js';

/** How etcd runs on the lab's masters: kubeadm static pods, an OpenShift 3 style systemd unit, or OpenShift 4 static pods. */
export type LabPlatform = 'kubeadm' | 'systemd' | 'openshift4';

/** What every host of a lab shares. */
export interface ClusterParams {
  initialCluster: string;
  token: string;
  clientPort: number;
  peerPort: number;
  /** Every member's client URL. */
  endpoints: string[];
  /** The lab's etcd client certificate: on a systemd master it is also the API server's (master.etcd-client.crt). */
  clientTls: { ca: string; cert: string; key: string };
  /** Every master: its name and address. */
  masters: { name: string; ip: string }[];
  /** More flags for every member's etcd (kubeadm hosts only). */
  etcdFlags?: string[];
}

/** The layout-specific paths of a host. */
export interface HostPaths {
  manifestsDir: string;
  pkiDir: string;
  dataDir: string;
  confFile?: string;
  unitDir?: string;
  masterConfig?: string;
}

/** A host as it is being built: everything but what `install` makes. */
export type NewHost = Omit<LabHost, 'supervisor' | 'units' | 'ssh'>;

/**
 * Everything that differs between the two kinds of master, so the harness
 * and its faults stay the same: where the files are, what is written on the
 * host, what runs etcd there, what the inventory says, and how etcd is
 * stopped, killed and started again.
 */
export interface HostLayout {
  readonly platform: LabPlatform;
  paths(hostRoot: string): HostPaths;
  /** kubeadm leaves the etcd CA's key on every master; openshift-ansible does not. */
  readonly caKeyOnHost: boolean;
  /** The member's certificate file in its pki dir (`server.crt`, `peer.key` unless the layout names them otherwise). */
  certFile?(name: string, kind: 'server' | 'peer' | 'metric', ext: 'crt' | 'key'): string;
  /**
   * The etcd metric signer's certificate file in every master's pki dir, where
   * the layout's masters have one (OpenShift 4.1–4.3: `metric-ca.crt`, beside
   * each master's `metric` pair signed by it); absent: no metric CA.
   */
  readonly metricCaFile?: string;
  /** The metric pair's subject and DNS names as the layout's signer issues it (with metricCaFile). */
  metricSubject?(name: string): { subj: string; dns: string[] };
  /** Writes the host's etcd configuration and makes what will run it (started later by the harness). */
  install(h: NewHost, c: ClusterParams): { supervisor: HostSupervisor; units?: UnitSupervisor };
  /** The cluster's `platform` section of the inventory (real hosts' paths). */
  inventoryPlatform(): Record<string, unknown>;
  /** A member's own paths in the inventory: the lab host's, overriding the platform's. */
  memberPaths(h: LabHost): Record<string, string>;
  /** etcd stopped the way an operator does it; it stays down. */
  stopEtcd(h: LabHost): void;
  /** etcd dies at once (SIGKILL) and nothing restarts it. */
  killEtcd(h: LabHost): void;
  /** etcd allowed to run again: started now, and restarted when it exits. */
  startEtcd(h: LabHost): void;
  /** Work on every host once all are installed, before anything starts (4.4+: data dirs as a bootstrapped cluster leaves them). */
  prepare?(hosts: NewHost[], c: ClusterParams): Promise<void>;
  /** The kube-apiserver static pod this layout writes itself, which the Kubernetes stand-in then follows (none: kubeadm's is written by it). */
  readonly apiManifest?: string;
  /** The Kubernetes stand-in serves the etcd operator's resource (OpenShift 4.4+). */
  readonly etcdOperator?: boolean;
}

const kubeadm: HostLayout = {
  platform: 'kubeadm',
  caKeyOnHost: true,
  paths: (root) => ({
    manifestsDir: join(root, 'etc/kubernetes/manifests'),
    pkiDir: join(root, 'etc/kubernetes/pki/etcd'),
    dataDir: join(root, 'var/lib/etcd'),
  }),
  install(h, c) {
    mkdirSync(h.manifestsDir, { recursive: true });
    writeFileSync(join(h.manifestsDir, 'etcd.yaml'), etcdManifest({ name: h.name, ip: h.ip, dataDir: h.dataDir, pkiDir: h.pkiDir, initialCluster: c.initialCluster, state: 'new', token: c.token, clientPort: c.clientPort, peerPort: c.peerPort, extraFlags: c.etcdFlags }));
    return { supervisor: new StaticPodSupervisor(h.name, h.manifestsDir, h.logDir) };
  },
  inventoryPlatform: () => ({ kind: 'kubeadm', manifestsDir: '/etc/kubernetes/manifests', dataDir: '/var/lib/etcd', pkiDir: '/etc/kubernetes/pki/etcd' }),
  memberPaths: (h) => ({ manifestsDir: h.manifestsDir, dataDir: h.dataDir, pkiDir: h.pkiDir }),
  // The kubelet runs what is in its manifests directory: moving the manifest out stops etcd.
  stopEtcd: (h) => park(h, 'etcd.yaml'),
  killEtcd: (h) => killPod(h, 'etcd.yaml'),
  startEtcd: (h) => unpark(h, 'etcd.yaml'),
};

function park(h: LabHost, file: string): void {
  const manifest = join(h.manifestsDir, file);
  if (existsSync(manifest)) renameSync(manifest, join(h.parkedDir, file));
}

function unpark(h: LabHost, file: string): void {
  const parked = join(h.parkedDir, file);
  if (existsSync(parked)) renameSync(parked, join(h.manifestsDir, file));
}

function killPod(h: LabHost, file: string): void {
  const pid = h.supervisor.pid();
  park(h, file);
  if (pid) process.kill(pid, 'SIGKILL');
}

const ETCD_MEMBER = 'etcd-member.yaml';

/**
 * OpenShift 4.1–4.3 masters: etcd is the static pod etcd-member.yaml (a
 * /bin/sh -c script ending in exec etcd, flags in its env too), beside the
 * kube-apiserver, kube-controller-manager and kube-scheduler pods, all run by
 * the kubelet stand-in from /etc/kubernetes/manifests; certificates in
 * /etc/ssl/etcd.
 */
const openshift4: HostLayout = {
  platform: 'openshift4',
  caKeyOnHost: false,
  // The names the 4.1–4.3 signer gives them, by the member's etcd DNS name (what its manifest's flags name).
  certFile: (name, kind, ext) => ocp4CertFile(kind, labEtcdDnsName(name), ext),
  // The etcd metric signer's CA, which signs each master's system:etcd-metric:<dns> pair for the etcd-metrics proxy.
  metricCaFile: 'metric-ca.crt',
  metricSubject: (name) => ({ subj: `/O=system:etcd-metrics/CN=system:etcd-metric:${labEtcdDnsName(name)}`, dns: [labEtcdDnsName(name)] }),
  paths: (root) => ({
    manifestsDir: join(root, 'etc/kubernetes/manifests'),
    pkiDir: join(root, 'etc/ssl/etcd'),
    dataDir: join(root, 'var/lib/etcd'),
  }),
  install(h, c) {
    // The discovery output at the host's own run/etcd/environment; the pod reads it by a path relative to its host's root
    // (its working directory), so a manifest copied to another master reads that master's, as /run/etcd does on real ones.
    const environment = join(h.root, 'run/etcd/environment');
    for (const d of [h.manifestsDir, dirname(environment)]) mkdirSync(d, { recursive: true });
    writeFileSync(environment, discoveryEnvironment(h.ip, h.name));
    writeFileSync(join(h.manifestsDir, ETCD_MEMBER), etcdMemberManifest({ name: h.name, ip: h.ip, dataDir: h.dataDir, pkiDir: h.pkiDir, initialCluster: c.initialCluster, state: 'new', token: c.token, clientPort: c.clientPort, peerPort: c.peerPort, environmentFile: './run/etcd/environment' }));
    for (const f of CONTROL_PLANE_PODS) writeFileSync(join(h.manifestsDir, f), controlPlaneManifest(f, join(h.manifestsDir, f)));
    return { supervisor: new StaticPodSupervisor(h.name, h.manifestsDir, h.logDir, 200, ETCD_MEMBER, h.root) };
  },
  inventoryPlatform: () => ({ kind: 'openshift4', manifestsDir: '/etc/kubernetes/manifests', manifestFile: ETCD_MEMBER, dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' }),
  memberPaths: (h) => ({ manifestsDir: h.manifestsDir, dataDir: h.dataDir, pkiDir: h.pkiDir }),
  stopEtcd: (h) => park(h, ETCD_MEMBER),
  killEtcd: (h) => killPod(h, ETCD_MEMBER),
  startEtcd: (h) => unpark(h, ETCD_MEMBER),
};

const ETCD_POD = 'etcd-pod.yaml';

/**
 * OpenShift 4.4+ masters: etcd is the static pod etcd-pod.yaml the
 * cluster-etcd-operator writes (see etcdPodManifest), whose script discovers
 * its initial cluster with the image's discover-etcd-initial-cluster (the
 * lab's stand-in is on the pod's PATH) and takes ETCD_INITIAL_CLUSTER_STATE
 * existing from env. Such a script never bootstraps a cluster (the bootstrap
 * node and the operator do): the lab gives each master the data dir of a
 * bootstrapped three-member cluster before its kubelet starts.
 */
const openshift44: HostLayout = {
  ...openshift4,
  // The lab's 4.4+ pod names the plain server/peer pairs (see etcdPodManifest): not 4.1–4.3's per-DNS-name files.
  certFile: undefined,
  // Its pod's metrics proxy serves with the peer pair (see etcdPodManifest): no metric CA.
  metricCaFile: undefined,
  metricSubject: undefined,
  apiManifest: 'kube-apiserver-pod.yaml',
  etcdOperator: true,
  install(h, c) {
    const image = join(h.root, 'image/bin');
    for (const d of [h.manifestsDir, image, join(h.root, 'etc/kubernetes/static-pod-resources/etcd-member')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(image, 'discover-etcd-initial-cluster'), discoverInitialClusterScript());
    chmodSync(join(image, 'discover-etcd-initial-cluster'), 0o755);
    writeFileSync(
      join(h.manifestsDir, ETCD_POD),
      etcdPodManifest({ name: h.name, ip: h.ip, dataDir: h.dataDir, pkiDir: h.pkiDir, manifestsDir: h.manifestsDir, backupDir: join(h.root, 'etc/kubernetes/static-pod-resources/etcd-member'), masters: c.masters, endpoints: c.endpoints, clientPort: c.clientPort, peerPort: c.peerPort }),
    );
    for (const f of CONTROL_PLANE_PODS) writeFileSync(join(h.manifestsDir, f), controlPlaneManifest(f, join(h.manifestsDir, f)));
    return { supervisor: new StaticPodSupervisor(h.name, h.manifestsDir, h.logDir, 200, ETCD_POD, h.root, image) };
  },
  prepare: (hosts, c) => bootstrapDataDirs(hosts, c),
  inventoryPlatform: () => ({ kind: 'openshift4', manifestsDir: '/etc/kubernetes/manifests', manifestFile: ETCD_POD, dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' }),
  stopEtcd: (h) => park(h, ETCD_POD),
  killEtcd: (h) => killPod(h, ETCD_POD),
  startEtcd: (h) => unpark(h, ETCD_POD),
};

const API_UNIT = 'atomic-openshift-master-api';

const systemd: HostLayout = {
  platform: 'systemd',
  caKeyOnHost: false,
  paths: (root) => ({
    // Nothing reads it on these hosts; it is named so kubeadm-minded code finds nothing there.
    manifestsDir: join(root, 'etc/kubernetes/manifests'),
    pkiDir: join(root, 'etc/etcd'),
    dataDir: join(root, 'var/lib/etcd'),
    confFile: join(root, 'etc/etcd/etcd.conf'),
    unitDir: join(root, 'etc/systemd/system'),
    masterConfig: join(root, 'etc/origin/master/master-config.yaml'),
  }),
  install(h, c) {
    const unitDir = h.unitDir!;
    const confFile = h.confFile!;
    const master = h.masterConfig!;
    const sysconfig = join(h.root, 'etc/sysconfig', API_UNIT);
    for (const d of [unitDir, join(unitDir, 'multi-user.target.wants'), dirname(confFile), dirname(master), dirname(sysconfig)]) mkdirSync(d, { recursive: true });
    writeFileSync(confFile, etcdConf({ name: h.name, ip: h.ip, dataDir: h.dataDir, pkiDir: h.pkiDir, initialCluster: c.initialCluster, state: 'new', token: c.token, clientPort: c.clientPort, peerPort: c.peerPort }));
    writeFileSync(join(unitDir, 'etcd.service'), etcdUnit(confFile));
    writeFileSync(sysconfig, apiSysconfig(master));
    writeFileSync(join(unitDir, `${API_UNIT}.service`), apiUnit(sysconfig));
    // Enabled as `systemctl enable` leaves them: the supervisor starts enabled units when the host boots.
    for (const u of ['etcd', API_UNIT]) symlinkSync(join(unitDir, `${u}.service`), join(unitDir, 'multi-user.target.wants', `${u}.service`));
    writeFileSync(master, masterConfig({ ip: h.ip, etcdUrls: c.endpoints, masterCount: c.endpoints.length }));
    copyFileSync(c.clientTls.ca, join(dirname(master), 'master.etcd-ca.crt'));
    copyFileSync(c.clientTls.cert, join(dirname(master), 'master.etcd-client.crt'));
    copyFileSync(c.clientTls.key, join(dirname(master), 'master.etcd-client.key'));
    const runDir = join(h.root, 'run/systemd');
    installSystemctl(h.binDir, { unitDir, runDir, logDir: h.logDir });
    const units = new UnitSupervisor(h.name, unitDir, runDir, h.logDir);
    return { supervisor: units, units };
  },
  inventoryPlatform: () => ({
    kind: 'systemd',
    unit: 'etcd',
    confFile: '/etc/etcd/etcd.conf',
    dataDir: '/var/lib/etcd',
    pkiDir: '/etc/etcd',
    apiserverUnits: [API_UNIT],
    masterConfig: '/etc/origin/master/master-config.yaml',
  }),
  memberPaths: (h) => ({ confFile: h.confFile!, dataDir: h.dataDir, pkiDir: h.pkiDir, masterConfig: h.masterConfig! }),
  // What `systemctl stop etcd` asks for: the unit is wanted inactive, its process gets SIGTERM.
  stopEtcd: (h) => void unitsOf(h).request('etcd', 'stop'),
  killEtcd: (h) => unitsOf(h).kill('etcd', 'SIGKILL'),
  startEtcd: (h) => void unitsOf(h).request('etcd', 'start'),
};

function unitsOf(h: LabHost): UnitSupervisor {
  if (!h.units) throw new Error(`${h.name} is not a systemd host`);
  return h.units;
}

export const LAYOUTS: Record<LabPlatform, HostLayout> = { kubeadm, systemd, openshift4 };

/** OpenShift 4 releases whose masters the lab lays out: 4.1–4.3's etcd-member.yaml, 4.4+'s etcd-pod.yaml. */
export type OcpVersion = '4.3' | '4.4';

/** The layout of a lab's masters: the platform's, or for openshift4 the release's. */
export function layoutOf(platform: LabPlatform, ocpVersion: OcpVersion = '4.3'): HostLayout {
  return platform === 'openshift4' && ocpVersion === '4.4' ? openshift44 : LAYOUTS[platform];
}
