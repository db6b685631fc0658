import { moveConfigAsideLines } from './config-aside.js';
import type { ConfigPlace, Platform } from './types.js';

/**
 * How etcd is stopped and started where it is a static pod (kubeadm, OpenShift 4): its manifest
 * moved out of the kubelet's directory stops it; written back (or changed), the kubelet starts it.
 */
export const staticPodEtcd: Pick<Platform, 'configNoun' | 'tools' | 'stopLines' | 'stopText' | 'startLines' | 'startText'> = {
  configNoun: 'manifest',
  tools: [],
  stopLines: (c: ConfigPlace) => moveConfigAsideLines(c, 'manifest'),
  stopText: (c) => `mv ${c.config} ${c.configAside}`,
  // The kubelet starts (or restarts) the pod as soon as the manifest is there or changed.
  startLines: () => [],
  startText: (mode) => (mode === 'start' ? 'the kubelet starts etcd' : 'the kubelet restarts etcd on the changed manifest'),
};
