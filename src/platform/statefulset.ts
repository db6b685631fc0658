import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { sh } from '../ssh/shell.js';
import type { Platform, WorkloadPlace } from './types.js';

type StatefulSetConfig = Extract<ClusterConfig['platform'], { kind: 'statefulset' }>;

const noHost = (what: string) => (): never => {
  throw new Error(`${what}: etcd runs as a StatefulSet in an admin cluster here; the bot has no host of its members to reach, only that cluster's API`);
};

/**
 * GKE on-prem "kubeception": a user cluster's etcd is the StatefulSet
 * `kube-etcd` in the user cluster's namespace of an admin cluster, guarded by
 * the PDB `kube-etcd-pdb`, each pod's data on its claim. There is no SSH to an
 * etcd host: every operation goes through the admin cluster's API (src/kube),
 * so the host-shaped half of the interface refuses, and `workload` says where
 * a member's objects are.
 */
export function statefulsetPlatform(conf: StatefulSetConfig): Platform {
  const workload = (m: MemberConfig): WorkloadPlace => {
    const ordinal = /-(\d+)$/.exec(m.name)?.[1];
    return {
      namespace: conf.namespace,
      statefulSet: conf.statefulSet,
      container: conf.container,
      pdb: conf.pdb,
      pod: m.name,
      claim: `${conf.claimTemplate}-${m.name}`,
      dataMountPath: conf.dataMountPath,
      utilityPod: `etcd-utility-${ordinal ?? m.name}`,
      utilityImage: conf.utilityImage,
      drainTimeoutSeconds: conf.drainTimeoutSeconds,
    };
  };
  return {
    kind: 'statefulset',
    configNoun: 'StatefulSet',
    tools: [],
    paths: (m) => ({ config: `statefulset/${conf.namespace}/${conf.statefulSet}`, asideDir: conf.dataMountPath, dataDir: conf.dataMountPath, pkiDir: '', pod: m.name }),
    stopLines: noHost('stopping a member over SSH'),
    stopText: () => `delete pod of ${conf.namespace}/${conf.statefulSet}`,
    startLines: noHost('starting a member over SSH'),
    startText: () => 'the StatefulSet controller makes the pod again',
    flag: (config, name) => new RegExp(`^--${name}=(.*)$`, 'm').exec(config)?.[1],
    // Values go into a JSON patch of the StatefulSet's args: any string can be written.
    flagValueProblem: (value) => (/[\0\n]/.test(value) ? 'it has a NUL or a newline in it' : null),
    withFlags: noHost('writing etcd flags into a file'),
    apiserverNoun: 'kube-apiserver',
    etcdOperator: null,
    apiserverPlace: noHost('stopping kube-apiserver on a master'),
    apiserverLines: noHost('stopping kube-apiserver on a master'),
    apiserverText: () => 'the user cluster\'s kube-apiserver runs in the admin cluster too: not stopped by the bot',
    layoutLines: () => [],
    references: () => [],
    backupPaths: () => [],
    kubelet: noHost("renewing a node's kubelet over SSH"),
    pki: noHost("issuing a member's certificates on its host"),
    adaptConfig: noHost("building a member's config from a peer's on its host"),
    workload,
  };
}

/**
 * The utility pod's script: moves every entry of the claim's data dir into
 * `before-<run>` inside the same claim (a claim is all the pod can write, and
 * nothing is deleted); run again, it finds nothing left to move, says so and
 * exits 3, which the step reads (with FallbackToLogsOnError) as "already done".
 */
/** The wipe script's exit code when there was nothing left to move. */
export const WIPE_NOTHING_TO_DO = 3;

export function wipeScript(dataDir: string, runId: string): string {
  const aside = `${dataDir}/before-${runId}`;
  return [
    'set -eu',
    sh`d=${dataDir}; aside=${aside}`,
    'moved=0',
    // Every name but . and ..: plain, dot-names, and names that start with two dots (..data, ...).
    'for f in "$d"/* "$d"/.[!.]* "$d"/..?*; do',
    '  [ -e "$f" ] || continue',
    '  case "${f##*/}" in before-*) continue ;; esac',
    '  mkdir -p "$aside"; mv "$f" "$aside"/; moved=$((moved+1))',
    'done',
    'if [ "$moved" -gt 0 ]; then echo "moved $moved entries of $d to $aside"; exit 0; fi',
    'if [ -d "$aside" ]; then echo "already moved aside: $aside"; else echo "nothing to move: $d is empty"; fi',
    `exit ${WIPE_NOTHING_TO_DO}`,
  ].join('\n');
}
