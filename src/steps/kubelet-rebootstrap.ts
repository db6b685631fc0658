import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import type { KubeletPlace } from '../platform/index.js';
import { placesFrom } from '../worker/steps/kubelet-preflight.js';
import { KUBELET_SETTLE_SECONDS, rebootstrapKubelet } from '../worker/steps/kubelet-steps.js';
import { sh } from '../ssh/shell.js';
import { CHECKED_READ, LOCKED, uniq } from './host-tools.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({
  node: z.string(),
  unit: z.string(),
  cert: z.string(),
  kubeconfig: z.string(),
  bootstrapConfig: z.string(),
  asideDir: z.string(),
  certAside: z.string(),
  kubeconfigAside: z.string(),
  marker: z.string(),
});
export type KubeletRebootstrapStep = Step<'kubelet-rebootstrap', z.infer<typeof params>> & { host: string };

/** Where a node's host is reached, as plans name it: "root@10.0.0.7:22". */
function sshOf(cluster: ClusterConfig, node: string): string {
  const h = [...cluster.members, ...cluster.nodes].find((x) => x.name === node);
  if (!h) throw new Error(`node ${node} is not in ${cluster.name}'s inventory`);
  if (!h.ssh) throw new Error(`node ${node} has no SSH access in the inventory`);
  return `${h.ssh.user}@${h.host}:${h.ssh.port}`;
}

/**
 * One node's kubelet made to bootstrap again, as the vendor procedure does by
 * hand (`systemctl stop kubelet`, its pki and kubeconfig out of the way,
 * `systemctl start kubelet`), except that nothing is deleted: the client
 * certificate and kubeconfig are moved aside under names tied to the run.
 * Started without them, the kubelet files a client CSR with its bootstrap
 * kubeconfig, then its serving CSR: the next step approves those.
 */
export const kubeletRebootstrapStep = {
  kind: 'kubelet-rebootstrap',
  params,
  spec(i: { cluster: ClusterConfig; place: KubeletPlace }): KubeletRebootstrapStep {
    const p = i.place;
    return {
      kind: 'kubelet-rebootstrap',
      title: `Restart the kubelet of ${p.node} without its client certificate, so it bootstraps again`,
      destructive: true,
      host: p.node,
      operation: `first, through ${i.cluster.kubeconfig ?? 'the kubeconfig'}: refuse unless the Kubernetes API is ready (/readyz) and accepts the bootstrap token in ${p.bootstrapConfig} (and those of the nodes restarted after this one): nothing is stopped otherwise. Then on ${sshOf(i.cluster, p.node)}: refuse unless ${p.bootstrapConfig} is there (what it bootstraps with); systemctl stop ${p.unit}; mv ${p.cert} ${p.certAside}; mv ${p.kubeconfig} ${p.kubeconfigAside}; systemctl start ${p.unit} (it files a client CSR with the bootstrap kubeconfig, then its serving CSR), its unit watched for ${KUBELET_SETTLE_SECONDS} s: a kubelet that does not stay active fails the step at once, naming it, and no other kubelet is restarted; then its bootstrap token is asked of the API server again (one that expired since fails the step, with the way back). Nothing is deleted; a second run of this step does not move the new files`,
      params: { ...p },
    };
  },
  // Host steps stop their SSH command once this worker lost the run lease (another may run the step now).
  // Before it stops this kubelet, it checks the API and the bootstrap credentials of this node and of the run's nodes after it.
  execute: (ctx, step) => rebootstrapKubelet(ctx.host, step, ctx.leaseLost, placesFrom(ctx.run, ctx.index).slice(1)),
  hosts: {
    // The aside, start and put-back scripts (mv, readlink of the certificate's link, rm of the begun file) and the read of the
    // bootstrap kubeconfig before the stop (CHECKED_READ): a host lacking one is refused at planning, before any kubelet is stopped.
    tools: uniq([...LOCKED, 'mv', 'readlink', 'rm', 'systemctl', 'seq', 'sleep', ...CHECKED_READ]),
    members: (step) => [{ member: step.host }],
    // Every node's bootstrap kubeconfig is looked at before the first kubelet is stopped: a node that could not come back
    // refuses the run then, not after the nodes before it were restarted (the step itself refuses too, as a last word).
    layout: (step) => [
      sh`if [ ! -s ${step.params.bootstrapConfig} ]; then echo "layout:there is no bootstrap kubeconfig at "${step.params.bootstrapConfig}", so the kubelet of "${step.params.node}" could not bootstrap once its client certificate is aside: put one there (kubeadm: kubeadm token create, then a kubeconfig with that token; OpenShift: the node-bootstrapper)"; fi`,
    ],
  },
  // Restarted (or stopped part-way) and the run's CSR step not done: nobody approves its CSRs, so it stays NotReady.
  leftBehind(run, index, step) {
    const status = run.records[index]?.status;
    const csrs = run.steps.findIndex((s) => s.kind === 'kubelet-csrs');
    if (csrs >= 0 && run.records[csrs]?.status === 'done') return null;
    if (status !== 'done' && status !== 'skipped' && status !== 'failed' && status !== 'running') return null;
    // Failed saying it left the kubelet as it was (refused before stopping it, or put its files back and started it).
    if (status === 'failed' && /nothing was stopped or moved|nothing was renewed on this node|nothing was done/.test(run.records[index]?.error ?? '')) return null;
    const p = step.params;
    const back = `\`mv ${p.certAside} ${p.cert} && mv ${p.kubeconfigAside} ${p.kubeconfig} && systemctl restart ${p.unit}\``;
    const cluster = run.cluster;
    const line =
      status === 'done' || status === 'skipped'
        ? `${p.node}: kubelet restarted without its client certificate: it is NotReady until its client and serving CSRs are approved (\`/etcd csr ${cluster}\`); or, to go back to its old certificate, on ${p.node}: ${back}`
        : `${p.node}: its restart did not finish, so its kubelet may be stopped with its files aside (${p.certAside}, ${p.kubeconfigAside}): on ${p.node}, \`systemctl is-active ${p.unit}\`; to go back: ${back} (only the files that are aside), or \`systemctl start ${p.unit}\` and approve its CSRs (\`/etcd csr ${cluster}\`)`;
    return { line, offer: { command: 'csr', args: [cluster], label: `/etcd csr ${cluster}` } };
  },
} satisfies StepDefinition<'kubelet-rebootstrap'>;
