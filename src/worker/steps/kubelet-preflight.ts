import { bootstrapCredential, checkBootstrapToken } from '../../kube/bootstrap-token.js';
import { KubeCluster } from '../../kube/client.js';
import { KubeError } from '../../kube/errors.js';
import { readyz } from '../../kube/readyz.js';
import type { KubeletPlace } from '../../platform/index.js';
import type { Run } from '../../runbook/types.js';
import { sh } from '../../ssh/shell.js';
import { readRemote, runScript, type HostStepContext } from './host-steps.js';

/** What to do about a bootstrap credential the API server does not take, per profile family, as the vendor procedures say. */
const NEW_TOKEN = 'kubeadm: `kubeadm token create` on a master, then put that token in place of the old one (users[0].user.token) in';
const OPENSHIFT = "OpenShift: the node-bootstrapper's kubeconfig";

/**
 * The kubelets a run restarts from this step on (this one first): the places of
 * its kubelet-rebootstrap steps not done yet. Their bootstrap credentials are
 * looked at before this step stops anything, so a node that could not come back
 * refuses the run before the kubelets ahead of it are restarted.
 */
export function placesFrom(run: Run, index: number): KubeletPlace[] {
  return run.steps.flatMap((s, i) => (s.kind === 'kubelet-rebootstrap' && i >= index && (i === index || run.records[i]?.status !== 'done') ? [{ ...s.params }] : []));
}

/**
 * Before a kubelet is stopped: the Kubernetes API answers (/readyz through the
 * cluster's kubeconfig: without it no restarted kubelet can file its CSR, nor
 * the bot approve it), and the API server accepts the bootstrap token of each
 * node still to be restarted (a kubeadm token lives 24 h: one that expired
 * leaves the kubelet without a way back once its certificate is aside). What
 * can be checked from the worker is the token as the API server judges it,
 * asked with that very token over the bot's own path to the API; the node's
 * path to the API is not (it is the same server behind the same name on
 * kubeadm). A credential that is not a bearer token (an exec plugin, a client
 * certificate) is said not checked rather than guessed at. Throws a refusal
 * that says nothing was stopped or moved; returns the lines of what it checked.
 */
export async function kubeletPreflight(ctx: HostStepContext, places: KubeletPlace[], signal?: AbortSignal): Promise<string[]> {
  const me = places[0]!;
  const refuse = (why: string, todo: string) =>
    new Error(`refused before the kubelet of ${me.node} was stopped: ${why}. On ${me.node} nothing was stopped or moved. ${todo}`);
  let k: KubeCluster;
  try {
    k = KubeCluster.forCluster(ctx.cluster);
  } catch (err) {
    throw refuse((err as KubeError).reason ?? (err as Error).message, 'Set clusters[].kubeconfig, then plan again.');
  }
  const ready = await readyz(k, k.server);
  if (!ready.ok) {
    const why = 'error' in ready ? ready.error.reason : `/readyz answered ${ready.status}${ready.failing.length ? ` (${ready.failing.join('; ')})` : ''}`;
    throw refuse(
      `the Kubernetes API (${k.where}, from ${k.source}) does not answer: ${why}; a kubelet restarted now could not file its CSR, nor could its CSR be approved`,
      'Bring the API back first (kube-apiserver on the masters, etcd behind it: `/etcd status`), then approve again.',
    );
  }
  const lines = [`Kubernetes API ${k.where} ready`];
  const judged = new Map<string, string | null>();
  for (const p of places) {
    let text: string | null;
    try {
      text = await readRemote(ctx.target(p.node), p.bootstrapConfig, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw refuse(`${p.node}'s bootstrap kubeconfig ${p.bootstrapConfig} could not be read over SSH (${(err as Error).message.slice(0, 300)})`, `Make ${p.node}'s host reachable, then approve again.`);
    }
    if (!text?.trim()) {
      throw refuse(
        `${p.node} has no bootstrap kubeconfig at ${p.bootstrapConfig}, so its kubelet could not bootstrap once its client certificate is aside`,
        `Put one there (${NEW_TOKEN} a kubeconfig at ${p.bootstrapConfig}; ${OPENSHIFT}), then approve again.`,
      );
    }
    const cred = bootstrapCredential(text);
    if ('none' in cred) {
      lines.push(`${p.node}: bootstrap credential in ${p.bootstrapConfig} not checked: ${cred.none}`);
      continue;
    }
    const what = cred.id ? `the bootstrap token ${cred.id}.… in ${p.bootstrapConfig} on ${p.node}` : `the token in ${p.bootstrapConfig} on ${p.node}`;
    if (!judged.has(cred.token)) {
      const v = await checkBootstrapToken(k, cred.token);
      judged.set(cred.token, v.ok ? null : v.kind === 'unanswered' ? `the Kubernetes API did not answer when asked about it: ${v.reason}` : v.reason);
    }
    const problem = judged.get(cred.token);
    if (problem) {
      throw refuse(
        `${what} is not one the API server takes (${problem}); without its client certificate that kubelet could not file its CSR`,
        `Make a new one (${NEW_TOKEN} ${p.bootstrapConfig} on ${p.node}; ${OPENSHIFT}), then approve again.`,
      );
    }
    lines.push(`${p.node}: ${what} is accepted by the API server`);
  }
  return lines;
}

/** Whether this run already moved the node's kubelet files aside (its marker is there): then nothing is checked, the kubelet is only started. */
export async function alreadyAside(ctx: HostStepContext, p: KubeletPlace, signal?: AbortSignal): Promise<boolean> {
  const out = await runScript(ctx.target(p.node), sh`if [ -e ${p.marker} ]; then echo medic-marker; fi`, { signal });
  return /^medic-marker$/m.test(out);
}
