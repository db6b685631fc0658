import { basename } from 'node:path';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { kubeadmPlatform } from './kubeadm.js';
import { openshift4Platform } from './openshift4.js';
import { statefulsetPlatform } from './statefulset.js';
import { systemdPlatform } from './systemd.js';
import type { ConfigPlace, MemberPaths, Platform } from './types.js';

export type { ApiserverPlace, ConfigPlace, ConfigSide, EtcdOperatorResource, MemberCert, MemberPaths, MemberPki, OtherCa, PkiClues, Platform, WorkloadPlace } from './types.js';
export type { KubeletPlace } from './kubelet.js';
export { otherCaOn, otherCasOf } from './other-ca.js';

/** The profile of how etcd runs on a cluster's masters: the one place that reads `platform.kind`. */
export function platformOf(cluster: ClusterConfig): Platform {
  const p = cluster.platform;
  switch (p.kind) {
    case 'kubeadm':
      return kubeadmPlatform(p);
    case 'systemd':
      return systemdPlatform(p);
    case 'openshift4':
      return openshift4Platform(p, cluster.members);
    case 'statefulset':
      return statefulsetPlatform(p);
  }
}

/** A member's paths and where a run keeps its config: `<asideDir>/<config's name>.<run>`. */
export function memberPlace(cluster: ClusterConfig, m: MemberConfig, runId: string): MemberPaths & ConfigPlace & { dataAside: string } {
  const p = platformOf(cluster).paths(m);
  return { ...p, configAside: `${p.asideDir}/${basename(p.config)}.${runId}`, dataAside: `${p.dataDir}.before-${runId}` };
}

/**
 * Why a runbook that works on the members' hosts (restore, restore-quorum) cannot
 * run on this cluster, or null when it can: where etcd is a Kubernetes workload
 * (a StatefulSet in an admin cluster) the bot has no host of a member to reach.
 * Asked before anything is looked at or planned, so nobody approves a plan that
 * could only fail at its first host step.
 */
export function hostRunbookRefusal(cluster: ClusterConfig, runbook: string): string | null {
  const first = cluster.members[0];
  const place = first ? platformOf(cluster).workload?.(first) : undefined;
  if (!place) return null;
  return `${runbook} is not available on ${cluster.name}: its etcd runs as the StatefulSet ${place.namespace}/${place.statefulSet} in an admin cluster, and ${runbook} works on the members' hosts (stop etcd, move its data, write its config), which the bot cannot reach there. Nothing was changed. For one failed member: \`/etcd replace <member> ${cluster.name}\`. For a lost majority or a restore from a backup, follow the platform's own procedure (GKE on-prem: restore the user cluster's etcd from its backup) by hand.`;
}
