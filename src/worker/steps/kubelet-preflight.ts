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
/**
 * Written on the host before the kubelet is stopped and taken away once the
 * marker is there (or all was put back): an attempt cut off between the two
 * (its worker killed, its session's script ended) leaves it, so the step run
 * again knows the kubelet may be stopped by this run even when nothing was moved yet.
 */
export function begunOf(p: KubeletPlace): string {
  return `${p.marker}.begun`;
}

/** A shell test: a copy this run moved aside (the certificate or the kubeconfig, file or link) is there. */
export function asideCopyTest(p: KubeletPlace): string {
  return sh`[ -e ${p.certAside} ] || [ -L ${p.certAside} ] || [ -e ${p.kubeconfigAside} ] || [ -L ${p.kubeconfigAside} ]`;
}

/** A shell test: an attempt of this run began on the host (its begun file, or a copy it moved aside). */
export function begunTest(p: KubeletPlace): string {
  return `${sh`[ -e ${begunOf(p)} ]`} || ${asideCopyTest(p)}`;
}

/** A refusal before a kubelet is stopped: why, and what to do about it (the step words it for what it finds on the host). */
export class KubeletRefusal extends Error {
  constructor(
    readonly node: string,
    readonly why: string,
    readonly todo: string,
  ) {
    super(`refused before the kubelet of ${node} was stopped: ${why}. On ${node} nothing was stopped or moved. ${todo}`);
  }
}

/** One node's bootstrap credential as the API server judges it: a line saying it is fine (or not checked), or why it is not. */
export type BootstrapLook = { ok: true; line: string } | { ok: false; why: string; todo: string; kind: 'missing' | 'unreadable' | 'rejected' | 'forbidden' | 'unanswered' };

/**
 * Reads the node's bootstrap kubeconfig over SSH and asks the API server, with
 * its token, for one CSR list. `judged` keeps the verdict of each token already
 * asked (the nodes of a cluster usually share one).
 */
export async function lookAtBootstrap(ctx: HostStepContext, k: KubeCluster, p: KubeletPlace, judged: Map<string, Exclude<BootstrapLook, { ok: true }> | null> = new Map(), signal?: AbortSignal): Promise<BootstrapLook> {
  let text: string | null;
  try {
    text = await readRemote(ctx.target(p.node), p.bootstrapConfig, signal);
  } catch (err) {
    if (signal?.aborted) throw err;
    return { ok: false, kind: 'unreadable', why: `${p.node}'s bootstrap kubeconfig ${p.bootstrapConfig} could not be read over SSH (${(err as Error).message.slice(0, 300)})`, todo: `Make ${p.node}'s host reachable, then approve again.` };
  }
  if (!text?.trim()) {
    return {
      ok: false,
      kind: 'missing',
      why: `${p.node} has no bootstrap kubeconfig at ${p.bootstrapConfig}, so its kubelet could not bootstrap once its client certificate is aside`,
      todo: `Put one there (${NEW_TOKEN} a kubeconfig at ${p.bootstrapConfig}; ${OPENSHIFT}), then approve again.`,
    };
  }
  const cred = bootstrapCredential(text);
  if ('none' in cred) return { ok: true, line: `${p.node}: bootstrap credential in ${p.bootstrapConfig} not checked: ${cred.none}` };
  const what = cred.id ? `the bootstrap token ${cred.id}.… in ${p.bootstrapConfig} on ${p.node}` : `the token in ${p.bootstrapConfig} on ${p.node}`;
  if (!judged.has(cred.token)) {
    const v = await checkBootstrapToken(k, cred.token);
    judged.set(
      cred.token,
      v.ok
        ? null
        : {
            ok: false,
            kind: v.kind,
            why: `${v.kind === 'unanswered' ? `the Kubernetes API did not answer when asked about it: ${v.reason}` : v.reason}`,
            todo: '',
          },
    );
  }
  const bad = judged.get(cred.token);
  if (bad) {
    return {
      ...bad,
      why: `${what} is not one the API server takes (${bad.why}); without its client certificate that kubelet could not file its CSR`,
      todo: `Make a new one (${NEW_TOKEN} ${p.bootstrapConfig} on ${p.node}; ${OPENSHIFT}), then approve again.`,
    };
  }
  return { ok: true, line: `${p.node}: ${what} is accepted by the API server` };
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
 * certificate) is said not checked rather than guessed at. Throws a
 * KubeletRefusal (its message says nothing was stopped or moved: the step
 * words it otherwise when an earlier attempt had begun); returns the lines of
 * what it checked.
 */
export async function kubeletPreflight(ctx: HostStepContext, places: KubeletPlace[], signal?: AbortSignal): Promise<string[]> {
  const me = places[0]!;
  const refuse = (why: string, todo: string) => new KubeletRefusal(me.node, why, todo);
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
  const judged = new Map<string, Exclude<BootstrapLook, { ok: true }> | null>();
  for (const p of places) {
    const look = await lookAtBootstrap(ctx, k, p, judged, signal);
    if (!look.ok) throw refuse(look.why, look.todo);
    lines.push(look.line);
  }
  return lines;
}

/**
 * What this run left on the node's host: `marker` once it moved the kubelet
 * files aside and was about to start it (then nothing is checked, the kubelet
 * is only started); `begun` when an attempt was cut off after it began (it may
 * have stopped the kubelet, and moved one file or both); null when it did nothing there.
 */
export async function traceOnHost(ctx: HostStepContext, p: KubeletPlace, signal?: AbortSignal): Promise<'marker' | 'begun' | null> {
  const out = await runScript(
    ctx.target(p.node),
    `${sh`if [ -e ${p.marker} ]; then echo medic-marker; elif`} ${begunTest(p)}; then echo medic-begun; fi`,
    { signal },
  );
  return /^medic-marker$/m.test(out) ? 'marker' : /^medic-begun$/m.test(out) ? 'begun' : null;
}
