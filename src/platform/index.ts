import { basename } from 'node:path';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { kubeadmPlatform } from './kubeadm.js';
import { openshift4Platform } from './openshift4.js';
import { statefulsetPlatform } from './statefulset.js';
import { systemdPlatform } from './systemd.js';
import type { ConfigPlace, MemberPaths, Platform } from './types.js';

export type { ApiserverPlace, ConfigPlace, ConfigSide, EtcdOperatorResource, MemberCert, MemberPaths, MemberPki, Platform, WorkloadPlace } from './types.js';
export type { KubeletPlace } from './kubelet.js';

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
