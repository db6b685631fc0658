import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabHost } from '../../src/lab/harness.js';
import { CONTROL_PLANE_PODS } from '../../src/lab/openshift4.js';

/** What a host's running etcd was started with: its command line and its ETCD_* environment, from /proc. */
export function etcdStartedWith(h: LabHost): { args: string[]; env: Record<string, string> } {
  const pid = h.supervisor.pid();
  if (!pid) throw new Error(`no etcd runs on ${h.name}`);
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((e) => e.startsWith('ETCD_'))
      .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  return { args, env };
}

/** The OpenShift 4 control-plane pods not running on their master (manifest away, or the kubelet not running it): none once all are back. */
export function controlPlaneDown(lab: Lab): string[] {
  return lab.hosts.flatMap((h) => CONTROL_PLANE_PODS.filter((f) => !existsSync(join(h.manifestsDir, f)) || h.supervisor.pid(f) === null).map((f) => `${h.name} ${f}${existsSync(join(h.manifestsDir, f)) ? ' (not running)' : ''}`));
}

/** Every control-plane pod of every master back: the manifests in place and the kubelet running them (it looks every 200 ms). What is still down after 5 s. */
export async function controlPlaneBack(lab: Lab): Promise<string[]> {
  const deadline = Date.now() + 5000;
  while (controlPlaneDown(lab).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return controlPlaneDown(lab);
}

/** The etcd operator's resource (etcds.operator.openshift.io/cluster) of a 4.4+ lab, as kubectl reads it. */
export async function etcdOperator(lab: Lab): Promise<{ metadata: { resourceVersion: string }; spec: { forceRedeploymentReason?: string } }> {
  return JSON.parse((await lab.kube!.kubectl(['get', 'etcd', 'cluster', '-o', 'json'])).stdout);
}
