import { dirname } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { sh } from '../ssh/shell.js';
import { adaptedFlags, withUrlHost } from './adapt-config.js';
import { staticPodEtcd } from './static-pod-etcd.js';
import { flagOf, setFlag, withoutFlag } from './flags.js';
import { kubeletPlaceOf } from './kubelet.js';
import { etcdPkiFiles, etcdPkiFlags, servingCerts } from './member-pki.js';
import type { ApiserverPlace, ConfigSide, Platform } from './types.js';

type KubeadmConfig = Extract<ClusterConfig['platform'], { kind: 'kubeadm' }>;

interface PodManifest {
  metadata?: { annotations?: Record<string, string> };
  spec: {
    containers: { name: string; command: string[]; volumeMounts?: { mountPath?: string }[] }[];
    volumes?: { hostPath?: { path?: string } }[];
  };
}

/** kubeadm's note of the client URL a master's etcd advertises (read by `kubeadm join` on other masters). */
const ADVERTISE_ANNOTATION = 'kubeadm.kubernetes.io/etcd.advertise-client-urls';

/** The etcd container of a static pod manifest (named etcd, else the first). */
function etcdContainer(doc: PodManifest, what = 'the manifest') {
  const c = doc?.spec?.containers?.find((x) => x.name === 'etcd') ?? doc?.spec?.containers?.[0];
  if (!c?.command) throw new Error(`${what} has no etcd container command`);
  return c;
}

/**
 * kubeadm masters: etcd is the static pod `<manifestsDir>/etcd.yaml`, run by the
 * kubelet while that file is there; its flags are the container's command.
 * Stopping etcd is moving the manifest out of the kubelet's directory (so a
 * reboot does not bring it back either); writing it back starts it.
 */
export function kubeadmPlatform(conf: KubeadmConfig): Platform {
  const paths = (m: MemberConfig) => {
    const manifestsDir = m.manifestsDir ?? conf.manifestsDir;
    return {
      config: `${manifestsDir}/etcd.yaml`,
      asideDir: `${dirname(manifestsDir)}/etcd-medic-aside`,
      dataDir: m.dataDir ?? conf.dataDir,
      pkiDir: m.pkiDir ?? conf.pkiDir,
      manifestsDir,
    };
  };
  return {
    kind: 'kubeadm',
    ...staticPodEtcd,
    paths,

    // A manifest is YAML written by the yaml library: it quotes whatever a value holds.
    flagValueProblem: (value) => (/[\0]/.test(value) ? 'it has a NUL in it' : null),
    flag(config, name) {
      return flagOf(etcdContainer(parseYaml(config) as PodManifest).command.map(String), name);
    },
    withFlags(config, flags) {
      const doc = parseYaml(config) as PodManifest;
      const c = etcdContainer(doc);
      let cmd = c.command.map(String);
      for (const [name, value] of Object.entries(flags)) cmd = value === null ? withoutFlag(cmd, name) : setFlag(cmd, name, value);
      c.command = cmd;
      return stringify(doc);
    },
    // Beside the command, the pod mounts the data and pki dirs from the host and notes its client URL: they move with it.
    adaptConfig(peerConfig, from: ConfigSide, to: ConfigSide) {
      const doc = parseYaml(peerConfig) as PodManifest;
      const c = etcdContainer(doc, `${from.name}'s manifest`);
      const command = c.command.map(String);
      let cmd = command;
      for (const [name, value] of Object.entries(adaptedFlags((f) => flagOf(command, f), from, to, etcdPkiFlags(to.pkiDir)))) cmd = setFlag(cmd, name, value);
      c.command = cmd;
      const moved = (p: string | undefined) => (p === from.dataDir ? to.dataDir : p === from.pkiDir ? to.pkiDir : p);
      for (const v of doc.spec.volumes ?? []) if (v.hostPath?.path) v.hostPath.path = moved(v.hostPath.path);
      for (const m of c.volumeMounts ?? []) if (m.mountPath) m.mountPath = moved(m.mountPath);
      const notes = doc.metadata?.annotations;
      if (notes?.[ADVERTISE_ANNOTATION]) notes[ADVERTISE_ANNOTATION] = withUrlHost(notes[ADVERTISE_ANNOTATION], from.host, to.host);
      return stringify(doc);
    },

    etcdOperator: null,
    apiserverNoun: 'kube-apiserver',
    apiserverPlace(m, runId): ApiserverPlace {
      const p = paths(m);
      return { name: m.name, asideDir: p.asideDir, manifest: `${p.manifestsDir}/kube-apiserver.yaml`, aside: `${p.asideDir}/kube-apiserver.yaml.${runId}` };
    },
    apiserverLines(p, action) {
      const manifest = String(p.manifest);
      const aside = String(p.aside);
      return action === 'start'
        ? [sh`if [ -e ${aside} ]; then mv ${aside} ${manifest}; echo kube-apiserver manifest put back; else echo no kube-apiserver manifest was moved aside; fi`]
        : [sh`mkdir -p ${p.asideDir}`, sh`if [ -e ${manifest} ]; then mv ${manifest} ${aside}; echo kube-apiserver stopped, manifest moved to ${aside}; else echo no kube-apiserver manifest here; fi`];
    },
    apiserverText: (p, action) => (action === 'stop' ? `mv ${String(p.manifest)} ${String(p.aside)} (if present)` : `mv ${String(p.aside)} ${String(p.manifest)} (if it was moved)`),

    // kube-apiserver reaches etcd through its own master's member (kubeadm's --etcd-servers=https://127.0.0.1:2379).
    references: () => [],
    layoutLines(m) {
      const p = paths(m);
      return [
        sh`if [ ! -d ${p.manifestsDir} ]; then echo "layout:there is no "${p.manifestsDir}" (the kubelet's static pod directory): it does not look like a kubeadm master"; fi`,
        sh`if [ ! -d ${dirname(p.dataDir)} ]; then echo "layout:the parent directory of the data dir "${p.dataDir}" does not exist"; fi`,
      ];
    },
    backupPaths: (m) => {
      const p = paths(m);
      return [p.config, p.pkiDir];
    },
    kubelet: (h, runId) => kubeletPlaceOf(conf, h, runId),
    // kubeadm keeps the etcd CA's key on every master (`kubeadm init phase certs etcd-*` signs with it there).
    pki(m) {
      const dir = paths(m).pkiDir;
      return {
        caCert: etcdPkiFiles(dir).caCert,
        caKey: `${dir}/ca.key`,
        certs: [
          ...servingCerts(m, dir),
          { role: 'healthcheck-client', cert: `${dir}/healthcheck-client.crt`, key: `${dir}/healthcheck-client.key`, subject: { cn: 'kube-etcd-healthcheck-client', o: 'system:masters' }, usages: ['clientAuth'], sans: { dns: [], ips: [] }, optional: true },
        ],
      };
    },
  };
}
