import { basename, dirname } from 'node:path';
import type { HostConfig } from '../config/schema.js';

/** Where one node's kubelet keeps its credentials, and the copies a run keeps aside (see Platform.kubelet). */
export interface KubeletPlace {
  node: string;
  /** The systemd unit that runs the kubelet (`kubelet`; OpenShift 3: `atomic-openshift-node`). */
  unit: string;
  /** Its client certificate (kubeadm: kubelet-client-current.pem, a link to the dated file it rotates). */
  cert: string;
  /** Its kubeconfig, which points at that certificate. */
  kubeconfig: string;
  /** The kubeconfig it bootstraps with when those two are gone (a bootstrap token, or OpenShift's node-bootstrapper). */
  bootstrapConfig: string;
  /** Where runs keep what they move aside on this host, and its lock (the member lock on a master). */
  asideDir: string;
  certAside: string;
  kubeconfigAside: string;
  /** Written once both are aside, before the kubelet is started again: a step run again does not move the new ones. */
  marker: string;
}

/** The kubelet's files of a profile, before a node's own overrides. */
export interface KubeletDefaults {
  kubeletCert: string;
  kubeletConfig: string;
  kubeletBootstrapConfig: string;
  kubeletUnit: string;
}

/**
 * A node's kubelet place: the profile's paths unless the inventory names the
 * node's own. The aside dir sits beside the kubeconfig (`/etc/kubernetes/etcd-medic-aside`
 * on kubeadm: the same dir, and so the same lock, as the master's etcd steps use).
 */
export function kubeletPlaceOf(d: KubeletDefaults, h: HostConfig, runId: string): KubeletPlace {
  const cert = h.kubeletCert ?? d.kubeletCert;
  const kubeconfig = h.kubeletConfig ?? d.kubeletConfig;
  const asideDir = `${dirname(kubeconfig)}/etcd-medic-aside`;
  return {
    node: h.name,
    unit: d.kubeletUnit,
    cert,
    kubeconfig,
    bootstrapConfig: h.kubeletBootstrapConfig ?? d.kubeletBootstrapConfig,
    asideDir,
    certAside: `${asideDir}/${basename(cert)}.${runId}`,
    kubeconfigAside: `${asideDir}/${basename(kubeconfig)}.${runId}`,
    marker: `${asideDir}/kubelet-renew.${runId}`,
  };
}
