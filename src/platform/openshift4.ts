import { dirname } from 'node:path';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { quote, sh } from '../ssh/shell.js';
import { staticPodEtcd } from './static-pod-etcd.js';
import { kubeletPlaceOf } from './kubelet.js';
import { podFlag, podValueProblem, withPodFlags } from './pod-manifest.js';
import type { ApiserverPlace, ConfigSide, EtcdOperatorResource, PkiClues, Platform } from './types.js';
import { adaptedFlags } from './adapt-config.js';
import { etcdPkiFiles, etcdPkiFlags, servingCerts } from './member-pki.js';
import { ocp4MemberPki } from './ocp4-certs.js';
import { withProxyPkiDir } from './metrics-proxy.js';

type Openshift4Config = Extract<ClusterConfig['platform'], { kind: 'openshift4' }>;

/** The names an etcd static pod goes by: kubeadm's, OpenShift 4.1–4.3's, 4.4+'s. A manifests dir holding another than the inventory's is another kind of master. */
const ETCD_MANIFESTS = ['etcd.yaml', 'etcd-member.yaml', 'etcd-pod.yaml'];

/** 4.4+'s static pod, written by the cluster-etcd-operator, which a forced redeployment makes write it again. */
const OPERATOR_MANIFEST = 'etcd-pod.yaml';
/** `oc patch etcd cluster`: the operator's own resource, whose spec.forceRedeploymentReason starts a new rollout when it changes. */
const ETCD_OPERATOR: EtcdOperatorResource = { group: 'operator.openshift.io', version: 'v1', plural: 'etcds', name: 'cluster' };

/**
 * OpenShift 4 masters: etcd is the static pod `<manifestsDir>/etcd-member.yaml`
 * (4.1–4.3; `etcd-pod.yaml` from 4.4), run by the kubelet while that file is
 * there. Its etcd container runs `/bin/sh -c` with a script ending in
 * `exec etcd --flag=value …` and takes other flags from its env (see
 * pod-manifest.ts for which one counts where both are set). Stopping etcd is
 * moving the manifest out of the kubelet's directory, as on kubeadm; a restore
 * also stops the kube-apiserver, kube-controller-manager and kube-scheduler
 * static pods the same way, as OpenShift's restore script does.
 */
export function openshift4Platform(conf: Openshift4Config, members: MemberConfig[] = []): Platform {
  const paths = (m: MemberConfig) => {
    const manifestsDir = m.manifestsDir ?? conf.manifestsDir;
    const manifestFile = m.manifestFile ?? conf.manifestFile;
    return {
      config: `${manifestsDir}/${manifestFile}`,
      asideDir: `${dirname(manifestsDir)}/etcd-medic-aside`,
      dataDir: m.dataDir ?? conf.dataDir,
      pkiDir: m.pkiDir ?? conf.pkiDir,
      manifestsDir,
      manifestFile,
    };
  };
  // A cluster whose masters (any of them, by the inventory) run 4.4+'s etcd-pod.yaml has its etcd operator.
  const operated = [conf.manifestFile, ...members.map((m) => m.manifestFile)].includes(OPERATOR_MANIFEST);
  return {
    kind: 'openshift4',
    ...staticPodEtcd,
    paths,

    flag: podFlag,
    flagValueProblem: podValueProblem,
    withFlags: withPodFlags,

    etcdOperator: operated ? ETCD_OPERATOR : null,

    apiserverNoun: 'kube-apiserver, kube-controller-manager and kube-scheduler',
    apiserverPlace(m, runId): ApiserverPlace {
      const p = paths(m);
      return {
        name: m.name,
        asideDir: p.asideDir,
        manifests: conf.controlPlaneManifests.map((f) => `${p.manifestsDir}/${f}`),
        asides: conf.controlPlaneManifests.map((f) => `${p.asideDir}/${f}.${runId}`),
      };
    },
    apiserverLines(p, action) {
      const manifests = p.manifests as string[];
      const asides = p.asides as string[];
      if (action === 'stop') {
        return [
          sh`mkdir -p ${p.asideDir}`,
          ...manifests.map((m, i) => {
            const a = asides[i]!;
            return [
              sh`if [ -e ${m} ]; then`,
              sh`  if [ -e ${a} ]; then echo both ${m} and ${a} exist, refusing to overwrite >&2; exit 3; fi`,
              sh`  mv ${m} ${a}; echo stopped: ${m} moved to ${a}`,
              sh`elif [ -e ${a} ]; then echo already stopped: ${m} is at ${a}`,
              sh`else echo no ${m} here; fi`,
            ].join('\n');
          }),
        ];
      }
      // Only what this run moved aside comes back; a manifest put back meanwhile (by hand) is left as it is.
      return manifests.map((m, i) => {
        const a = asides[i]!;
        return [
          sh`if [ -e ${a} ]; then`,
          sh`  if [ -e ${m} ]; then echo ${m} is back already, ${a} left where it is;`,
          sh`  else mv ${a} ${m}; echo started: ${m} put back; fi`,
          sh`elif [ -e ${m} ]; then echo ${m} is in place, not moved aside by this run`,
          // On neither path: that pod does not run on this master after the run (it was not there before it either, or its copy went).
          sh`else echo missing: ${m} is neither in place nor kept aside by this run: that pod does not run on this master; fi`,
        ].join('\n');
      });
    },
    apiserverText: (p, action) => {
      const manifests = p.manifests as string[];
      const asides = p.asides as string[];
      return action === 'stop'
        ? manifests.map((m, i) => `mv ${m} ${asides[i]}`).join('; ') + ' (those present)'
        : manifests.map((m, i) => `mv ${asides[i]} ${m}`).join('; ') + ' (those this run moved)';
    },

    // kube-apiserver reaches etcd by the etcd-N DNS names and the member's own address: no file on the host lists the members but the manifest itself.
    references: () => [],
    layoutLines(m) {
      const p = paths(m);
      const others = ETCD_MANIFESTS.filter((f) => f !== p.manifestFile);
      return [
        sh`if [ ! -d ${p.manifestsDir} ]; then echo "layout:there is no "${p.manifestsDir}" (the kubelet's static pod directory): it does not look like an OpenShift 4 master";`,
        // A manifest under another etcd pod's name is another kind (or version) of master: the bot would write a second etcd pod beside it.
        sh`elif [ ! -e ${p.config} ]; then for medic_f in ` + others.map((f) => quote(f)).join(' ') + sh`; do if [ -e ${p.manifestsDir}/"$medic_f" ]; then echo "layout:"${p.manifestsDir}" holds "$medic_f", not "${p.manifestFile}" (the inventory's manifestFile): another kind or version of master"; fi; done;`,
        // The profile changes flags on the `exec etcd` line of the pod's script; a manifest without one is not an OpenShift 4 etcd pod.
        String.raw`elif ! grep -qE '^[[:space:]]*(exec[[:space:]]+)?([^[:space:]]*/)?etcd([[:space:]]|\\|$)' ` + sh`${p.config}; then echo "layout:"${p.config}" has no exec etcd line (an OpenShift 4 etcd pod runs etcd from a /bin/sh -c script)";`,
        // cluster-restore.sh (4.4+) leaves a restore pod as etcd-pod.yaml: its script restores a snapshot at every start and
        // refuses a data dir that is not empty. Flags written into it would start nothing but that restore again.
        String.raw`elif grep -qE '(^|[[:space:]])snapshot[[:space:]]+restore([[:space:]]|$)' ` + sh`${p.config}; then echo "layout:"${p.config}" is a restore pod (OpenShift's cluster-restore.sh writes one): its script restores a snapshot each time it starts; finish or undo that restore first (the etcd operator's next revision replaces it)"; fi`,
        sh`if [ ! -d ${dirname(p.dataDir)} ]; then echo "layout:the parent directory of the data dir "${p.dataDir}" does not exist"; fi`,
      ];
    },
    // The seed's backup: the static pod's manifest and the member's certificates.
    backupPaths: (m) => {
      const p = paths(m);
      return [p.config, p.pkiDir];
    },
    kubelet: (h, runId) => kubeletPlaceOf(conf, h, runId),

    // 4.1–4.3 masters keep no CA key (the seeds sign with a temporary signer pod), so a rebuilt master is refused
    // at planning unless one was put there. Their pairs are named by the member's etcd DNS name
    // (system:etcd-peer:<dns>.crt): these fixed paths are 4.4+'s as the lab lays them; on 4.1–4.3 the replace
    // look learns the real ones (pkiOnHost) from the manifest and the host.
    pki(m) {
      const dir = paths(m).pkiDir;
      return { caCert: etcdPkiFiles(dir).caCert, caKey: `${dir}/ca.key`, certs: servingCerts(m, dir) };
    },
    // The operator's 4.4+ masters keep their own layout (etcd-all-certs/etcd-peer-<node>.crt, written by the operator).
    ...(operated
      ? {}
      : {
          pkiOnHost: (m: MemberConfig, clues: PkiClues) => {
            const p = paths(m);
            return ocp4MemberPki(m, p.pkiDir, `${p.pkiDir}/ca.key`, clues);
          },
        }),
    // The peer's manifest with this member's flags, on the script line or in env where the peer sets them. What
    // the peer writes with the discovery file's variables (https://\${ETCD_IPV4_ADDRESS}:2380,
    // system:etcd-server:\${ETCD_DNS_NAME}.crt) names each host's own already, and stays.
    adaptConfig(peerConfig, from: ConfigSide, to: ConfigSide) {
      // 4.4+'s operator writes etcd-pod.yaml for one node: its NODE_<node>_ variables would start etcd as the peer.
      if (peerConfig.includes(`NODE_${from.name.replace(/[-.]/g, '_')}_`)) {
        throw new Error(`${from.name}'s etcd manifest is written by the etcd operator for its own node (it names NODE_${from.name.replace(/[-.]/g, '_')}_… variables): it is not adapted for ${to.name}; put ${to.name}'s own etcd-pod.yaml back`);
      }
      const perHost = (f: string) => (podFlag(peerConfig, f) ?? '').includes('${');
      const pkiFlags = Object.fromEntries(Object.entries(etcdPkiFlags(to.pkiDir)).filter(([f]) => !perHost(f)));
      // A flag whose value stays as the peer has it is not written again: written again, a word with an expansion
      // (https://\${ETCD_IPV4_ADDRESS}:2380) would be quoted as a literal and reach etcd unexpanded.
      const changed = Object.entries(adaptedFlags((f) => podFlag(peerConfig, f), from, to, pkiFlags)).filter(([f, v]) => v !== (podFlag(peerConfig, f) ?? null));
      // The metrics proxy's files (4.1–4.3's etcd-metrics container) move with etcd's: this member's, in its pki dir.
      return withPodFlags(withProxyPkiDir(perHostPkiMoved(peerConfig, from.pkiDir, to.pkiDir), from.pkiDir, to.pkiDir), Object.fromEntries(changed));
    },
  };
}

/**
 * A peer's manifest whose certificate flags name per-host files
 * (`<pkiDir>/system:etcd-peer:${ETCD_DNS_NAME}.crt`, 4.1–4.3) made to name them
 * in this member's pki dir, where the inventory gives it another: the word's
 * directory changed on the text, its expansion kept as the shell reads it
 * (written through withPodFlags it would be quoted as a literal). The same dir
 * (every real master's /etc/ssl/etcd): the manifest as it was.
 */
function perHostPkiMoved(manifest: string, fromDir: string, toDir: string): string {
  if (fromDir === toDir) return manifest;
  let out = manifest;
  for (const f of Object.keys(etcdPkiFlags(fromDir))) {
    const v = podFlag(out, f);
    if (v === undefined || !v.includes('${') || !v.startsWith(`${fromDir}/`)) continue;
    const word = `--${f}=${v}`;
    const at = out.indexOf(word);
    if (at < 0 || out.indexOf(word, at + 1) >= 0) throw new Error(`--${f}=${v} is not written as one plain word on the etcd line: it cannot be moved to ${toDir}; write ${toDir}'s path there by hand`);
    const moved = `${toDir}/${v.slice(fromDir.length + 1)}`;
    out = out.slice(0, at) + `--${f}=${moved}` + out.slice(at + word.length);
    if (podFlag(out, f) !== moved) throw new Error(`moving --${f} to ${toDir} did not hold (it reads ${JSON.stringify(podFlag(out, f))}): not written`);
  }
  return out;
}
