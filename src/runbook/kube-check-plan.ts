import type { ClusterConfig } from '../config/schema.js';
import { APISERVER_PORT } from '../kube/ports.js';
import type { StepSpec } from './types.js';

/**
 * The last step of a restore: etcd is back, now is Kubernetes? kube-apiserver
 * /readyz on every master and every master's Node Ready, waited for up to the
 * cluster's bound. Reads only, so it is safe to run again after a crash, and it
 * never fails the run: what is still missing at the bound is what the run ends with.
 */
export function kubeCheckStep(cluster: ClusterConfig): StepSpec {
  const wait = cluster.kubeReadyWaitSeconds;
  const masters = cluster.members.map((m) => ({ name: m.name, host: m.host }));
  const operation = cluster.kubeconfig
    ? `GET /readyz on ${masters.map((m) => `https://${m.host}:${APISERVER_PORT}`).join(', ')}; nodes ${masters.map((m) => m.name).join(', ')} Ready (through ${cluster.kubeconfig}); pending CSRs counted. Polls for up to ${wait} s; changes nothing, and does not fail the run: what is still missing then is reported ("etcd healthy, Kubernetes not yet")`
    : 'no kubeconfig for this cluster: Kubernetes is not checked (set clusters[].kubeconfig in the inventory to check kube-apiserver and the control-plane nodes)';
  return {
    kind: 'kube-check',
    title: 'Check Kubernetes: kube-apiserver ready on every master, control-plane nodes Ready',
    destructive: false,
    operation,
    params: { waitSeconds: wait },
  };
}

/**
 * The last step of a replace (and of each grow-back): the member is healthy in
 * etcd; is its master back in Kubernetes? Waits, up to the cluster's bound, for
 * that master's Node to be Ready, and shows the CSRs its kubelet files meanwhile
 * (a rebuilt master's client CSR, then its serving CSR) in the run's thread for
 * people to approve with the usual buttons. It approves nothing itself, reads
 * only, and never fails the run: a Node still NotReady at the bound is what the
 * run ends with.
 */
export function kubeNodeStep(cluster: ClusterConfig, node: string): StepSpec {
  const wait = cluster.kubeReadyWaitSeconds;
  const operation = cluster.kubeconfig
    ? `GET node ${node} (through ${cluster.kubeconfig}) until Ready; its pending CSRs (client CSR for system:node:${node}, then its serving CSR) posted in this thread, each once, for approval with the buttons there: the bot approves nothing itself. Polls for up to ${wait} s; changes nothing, and does not fail the run: what is still missing then is reported ("etcd healthy, Kubernetes not yet")`
    : `no kubeconfig for this cluster: node ${node} is not checked in Kubernetes (set clusters[].kubeconfig in the inventory to wait for it and show its CSRs here)`;
  return {
    kind: 'kube-check',
    title: `Wait for node ${node} Ready in Kubernetes, its CSRs shown here for approval`,
    destructive: false,
    operation,
    params: { waitSeconds: wait, node },
  };
}
