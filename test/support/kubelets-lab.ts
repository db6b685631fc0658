import { join } from 'node:path';
import { startMedicLab, type MedicLab } from './medic-lab.js';

/** Alice asks for the renewal; Bob approves its steps. */
export const KUBELET_ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };

/**
 * The lab of the `/etcd kubelets renew` tests: three kubeadm masters and a
 * worker node, each kubelet a unit of its host. `botOnly`: workers run as
 * their own processes (test/support/crash-workers.ts), so that one can die
 * mid-step. `readyWaitSeconds`: the cluster's bound on a kubelet coming back.
 */
export function startKubeletsLab(name: string, subnet: number, o: { readyWaitSeconds: number; botOnly?: boolean }): Promise<MedicLab> {
  return startMedicLab(name, subnet, {
    roles: KUBELET_ROLES,
    ...(o.botOnly ? { botOnly: true } : {}),
    lab: { kube: true, workers: 1 },
    editInventory(inv) {
      inv.clusters[0].kubeReadyWaitSeconds = o.readyWaitSeconds;
    },
  });
}

/** Where a run keeps a node's kubelet files it moved aside. */
export function kubeletAsideDir(t: MedicLab, node: string): string {
  return join(t.lab.node(node).root, 'etc/kubernetes/etcd-medic-aside');
}
