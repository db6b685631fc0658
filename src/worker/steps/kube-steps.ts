import type { ClusterConfig } from '../../config/schema.js';
import { KubeCluster } from '../../kube/client.js';
import { kubeShortfall, nodeNotReady, readyzProblem, sinceText, viewControlPlane, type ControlPlaneView } from '../../kube/control-plane.js';
import { csrState, listCsrs, type Csr } from '../../kube/csrs.js';
import { KubeError } from '../../kube/errors.js';
import { operatorResourceName, redeploymentReason, setRedeploymentReason } from '../../kube/etcd-operator.js';
import { approvedByText, csrsOfNode, servingCsrExpected } from '../../kube/node-csrs.js';
import { getNode, summarizeNode, type NodeSummary } from '../../kube/nodes.js';
import type { Logger } from '../../log.js';
import type { StepResult } from '../../runbook/engine.js';
import { param } from '../../runbook/params.js';
import type { CommandOffer, StepOf } from '../../runbook/types.js';
import { lookAtLoadBalancer } from '../lb-check.js';
import { pauseOrStop } from './pause-or-stop.js';

export interface KubeStepContext {
  cluster: ClusterConfig;
  log: Logger;
  /** How long between two looks while Kubernetes is not ready yet. */
  pollMs?: number;
  now?: () => Date;
  /** Where a step waiting for one node shows that node's CSRs (the run's thread); made once the cluster is reachable. */
  csrThread?: (k: KubeCluster) => CsrThread;
  /** How long a node that just got its client certificate is given to file its serving CSR once Ready. */
  servingGraceMs?: number;
  /** How often the kubelet-csrs step asks the units of the kubelets not back yet (tests shorten it). */
  unitLookMs?: number;
}

/** CSR review messages in the run's thread. */
export interface CsrThread {
  /** Posts those of `csrs` not shown in this run's thread yet (one message); the names it posted. */
  show(csrs: Csr[], title: string): Promise<string[]>;
  /** Posts `text` in the thread (and on the timeline) unless every one of `uids` was announced in this run already; whether it posted. */
  announce(uids: string[], text: string): Promise<boolean>;
}

const POLL_MS = 3000;

/**
 * The cluster's Kubernetes API, or the step's result when there is none: without a kubeconfig the check
 * passes saying so; configured but unusable, it says so at the run's end, since nobody will have looked.
 */
function openKube(c: ClusterConfig, notConfigured: string): KubeCluster | StepResult {
  if (!c.kubeconfig) return { summary: notConfigured };
  try {
    return KubeCluster.forCluster(c);
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    return { summary: `Kubernetes not checked: ${err.reason}`, caveat: `etcd healthy, Kubernetes not checked: ${err.reason}` };
  }
}

const pause = (ms: number, signal?: AbortSignal) => pauseOrStop(ms, 'Kubernetes', signal);

/** One line per master for the thread: its kube-apiserver's /readyz and its Node. */
function details(v: ControlPlaneView, now: Date): string {
  return v.masters
    .map((m) => {
      const api = readyzProblem(m.readyz) ?? `ok (${m.readyz.tookMs} ms)`;
      const node = v.nodesError ? 'node unknown' : !m.node ? 'no Node object' : (nodeNotReady(m.node, now) ?? `node Ready since ${sinceText(m.node.readySince, now)}`);
      return `${m.name}: /readyz ${api}; ${node}`;
    })
    .join('\n');
}

/**
 * The end of a restore, on the Kubernetes side: every master's kube-apiserver
 * /readyz and every master's Node Ready, polled until they are or the bound
 * passes. Only reads: run again after a crash, it simply looks again. When
 * Kubernetes is not ready at the bound the step still completes (etcd is
 * recovered; nothing is rolled back) with a caveat naming what is missing, and
 * offers `/etcd csr` when CSRs wait for a decision.
 */
export async function kubeCheck(ctx: KubeStepContext, step: StepOf<'kube-check'>, signal?: AbortSignal): Promise<StepResult> {
  if (step.params.node !== undefined) {
    const node = await kubeNodeWait(ctx, step, signal);
    if (!step.params.loadBalancer || !ctx.cluster.kubeconfig) return node;
    // The replaced master's API server must be reachable where clients go: the load balancer in front of the masters.
    const k = openKube(ctx.cluster, '');
    if (!(k instanceof KubeCluster)) return node;
    const lb = await lookAtLoadBalancer(k, ctx.cluster, step.params.node, { signal });
    const caveat = [node.caveat, lb.caveat].filter(Boolean).join(' ') || undefined;
    return { ...node, summary: `${node.summary}; ${lb.summary}`, output: [node.output, ...lb.lines].filter(Boolean).join('\n'), caveat };
  }
  const now = ctx.now ?? (() => new Date());
  const c = ctx.cluster;
  const k = openKube(c, 'Kubernetes not checked: no kubeconfig for this cluster (set clusters[].kubeconfig in the inventory to check kube-apiserver and the control-plane nodes after a restore)');
  if (!(k instanceof KubeCluster)) return k;
  const waitMs = Number(param(step, 'waitSeconds')) * 1000;
  const t0 = now().getTime();
  const pollMs = ctx.pollMs ?? POLL_MS;
  const thread = ctx.csrThread?.(k);
  for (let looks = 1; ; looks++) {
    const view = await viewControlPlane(k, c, now);
    // Masters grown back on rebuilt hosts file CSRs: shown in the run's thread (each once) for approval there.
    if ((view.pendingCsrs ?? 0) > 0 && thread) await showMastersCsrs(ctx, k, thread);
    const at = now();
    const missing = kubeShortfall(view, at);
    const waited = `${((at.getTime() - t0) / 1000).toFixed(1)} s, ${looks} look${looks === 1 ? '' : 's'}`;
    const pending = view.pendingCsrs ?? 0;
    const offer: CommandOffer | undefined = pending > 0 ? { command: 'csr', args: [c.name], label: `Review ${pending} pending CSR${pending === 1 ? '' : 's'}` } : undefined;
    const csrHint = pending > 0 ? ` Review the CSRs with \`/etcd csr ${c.name}\`.` : '';
    const output = `${details(view, at)}\npending CSRs: ${view.pendingCsrs ?? `unknown (${view.csrsError?.reason})`}`;
    if (missing.length === 0) {
      const names = view.masters.map((m) => m.name).join(', ');
      return {
        summary: `Kubernetes ready: kube-apiserver /readyz ok on ${names}; nodes ${names} Ready (after ${waited}).${pending ? ` ${pending} CSR${pending === 1 ? '' : 's'} pending.` : ''}${csrHint}`,
        output,
        offer,
      };
    }
    const left = t0 + waitMs - at.getTime();
    if (left <= 0) {
      const caveat = `etcd healthy, Kubernetes not yet: ${missing.join('; ')} (checked for ${waited}).${csrHint}`;
      ctx.log.warn({ cluster: c.name, missing }, 'Kubernetes not ready at the end of the run');
      return { summary: caveat, output, caveat, offer };
    }
    ctx.log.info({ cluster: c.name, missing: missing.length, leftMs: left }, 'Kubernetes not ready yet; looking again');
    await pause(Math.min(pollMs, left), signal);
  }
}

/** Posts the pending CSRs of the inventory's masters in the run's thread (those not shown there yet). */
async function showMastersCsrs(ctx: KubeStepContext, k: KubeCluster, thread: CsrThread): Promise<void> {
  try {
    const all = (await listCsrs(k)).items;
    for (const m of ctx.cluster.members) {
      const pending = csrsOfNode(all, m.name).filter((x) => csrState(x).state === 'pending');
      if (pending.length) await thread.show(pending, `${pending.length === 1 ? 'CSR' : 'CSRs'} of node ${m.name}, for approval`);
    }
  } catch (err) {
    ctx.log.warn({ cluster: ctx.cluster.name, err: (err as Error).message }, 'could not post the masters\' CSRs in the run thread; trying again at the next look');
  }
}

const NODE_POLL_MS = 2000;
const SERVING_GRACE_MS = 10_000;

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** "node m3 NotReady since …", "node m3 has not registered (no Node object)", or the reason it could not be read. */
function nodeProblem(name: string, node: NodeSummary | null, error: string | null, now: Date): string | null {
  if (error) return `node ${name} could not be read: ${error}`;
  if (!node) return `node ${name} has not registered (no Node object)`;
  return nodeNotReady(node, now);
}

/**
 * The end of a replace on the Kubernetes side: waits for one master's Node to
 * be Ready, and posts that node's pending CSRs in the run's thread as they
 * appear (each once, remembered in Redis under the run, so a resumed step does
 * not post again), where people approve them with the usual buttons. It never
 * approves anything. A node that got a new client certificate is given a few
 * seconds once Ready to file its serving CSR, so that one is shown too. At the
 * bound the step completes with a caveat naming what is missing: nothing is
 * rolled back.
 */
export async function kubeNodeWait(ctx: KubeStepContext, step: StepOf<'kube-check'>, signal?: AbortSignal): Promise<StepResult> {
  const now = ctx.now ?? (() => new Date());
  const c = ctx.cluster;
  const name = String(param(step, 'node'));
  const k = openKube(c, `Kubernetes not checked: no kubeconfig for this cluster, so node ${name} and its CSRs are not looked at (set clusters[].kubeconfig in the inventory)`);
  if (!(k instanceof KubeCluster)) return k;
  const thread = ctx.csrThread?.(k);
  const waitMs = Number(param(step, 'waitSeconds')) * 1000;
  const graceMs = ctx.servingGraceMs ?? SERVING_GRACE_MS;
  const pollMs = ctx.pollMs ?? NODE_POLL_MS;
  const t0 = now().getTime();
  let readySince: number | null = null;
  const shown: string[] = [];
  for (let looks = 1; ; looks++) {
    let node: NodeSummary | null = null;
    let mine: Csr[] = [];
    let error: string | null = null;
    try {
      const [n, list] = await Promise.all([getNode(k, name), listCsrs(k)]);
      node = n && summarizeNode(n);
      mine = csrsOfNode(list.items, name);
    } catch (err) {
      error = err instanceof KubeError ? err.reason : (err as Error).message;
    }
    const pending = mine.filter((x) => csrState(x).state === 'pending');
    if (pending.length > 0 && thread) {
      const kinds = new Set(pending.map((x) => (x.spec?.signerName?.endsWith('serving') ? 'Serving' : 'Client')));
      const title = `${kinds.size === 1 ? `${[...kinds][0]} ` : ''}${pending.length === 1 ? 'CSR' : 'CSRs'} of node ${name}, for approval`;
      try {
        shown.push(...(await thread.show(pending, title)));
      } catch (err) {
        ctx.log.warn({ cluster: c.name, node: name, err: (err as Error).message }, 'could not post the node\'s CSRs in the run thread; trying again at the next look');
      }
    }
    const at = now();
    const problem = nodeProblem(name, node, error, at);
    if (!problem) readySince ??= at.getTime();
    const waited = `${((at.getTime() - t0) / 1000).toFixed(1)} s, ${plural(looks, 'look')}`;
    const left = t0 + waitMs - at.getTime();
    const output = `node ${name}: ${problem ?? 'Ready'}\n${mine.length ? mine.map((x) => `${x.metadata?.name} (${x.spec?.signerName}): ${csrState(x).state}`).join('\n') : 'no CSRs of this node'}${shown.length ? `\nshown in this thread: ${shown.join(', ')}` : ''}`;
    // Once Ready with nothing pending it is done, unless its serving CSR may still come (then a few seconds more, within the bound).
    const servingMayCome = servingCsrExpected(mine) && readySince !== null && at.getTime() - readySince < graceMs && left > 0;
    if (!problem && pending.length === 0 && !servingMayCome) {
      const approved = approvedByText(mine);
      return { summary: `node ${name} Ready${approved ? `; ${approved}` : ''} (after ${waited})`, output };
    }
    if (left <= 0) {
      const missing = [problem, pending.length ? plural(pending.length, 'pending CSR') : null].filter(Boolean).join(', ');
      const hint = pending.length ? (thread ? ' Approve them in this thread.' : ` Review them with \`/etcd csr ${c.name}\`.`) : '';
      const caveat = `etcd healthy, Kubernetes not yet: ${missing} (checked for ${waited}).${hint}`;
      ctx.log.warn({ cluster: c.name, node: name, missing }, 'node not ready at the end of the run');
      const offer: CommandOffer | undefined = pending.length && !thread ? { command: 'csr', args: [c.name], label: `Review ${plural(pending.length, 'pending CSR')}` } : undefined;
      return { summary: caveat, output, caveat, offer };
    }
    await pause(Math.min(pollMs, left), signal);
  }
}

/**
 * Sets the etcd operator's forceRedeploymentReason once per run: a reason of
 * this run already there (a retried step, a crash after the patch) is left as
 * it is. The API server may still be coming back from the restore: errors
 * other than an answer that the resource does not exist are tried again until
 * the bound. Never fails the run (etcd is restored by now): what it could not
 * do ends the run as a caveat with the command to run by hand.
 */
export async function forceRedeployment(ctx: KubeStepContext, step: StepOf<'force-redeployment'>, signal?: AbortSignal): Promise<StepResult> {
  const now = ctx.now ?? (() => new Date());
  const { resource, reasonPrefix } = step.params;
  const name = operatorResourceName(resource);
  const byHand = `oc patch etcd ${resource.name} -p='{"spec": {"forceRedeploymentReason": "${reasonPrefix}-'"$( date --rfc-3339=ns )"'"}}' --type=merge`;
  const k = openKube(ctx.cluster, `no kubeconfig for this cluster: the etcd operator was not told to redeploy; run \`${byHand}\``);
  if (!(k instanceof KubeCluster)) return { ...k, caveat: k.caveat ?? k.summary };
  const t0 = now().getTime();
  const waitMs = step.params.waitSeconds * 1000;
  for (let looks = 1; ; looks++) {
    try {
      const current = await redeploymentReason(k, resource);
      if (current === reasonPrefix || current.startsWith(`${reasonPrefix}-`)) {
        return { summary: `${name} already has forceRedeploymentReason "${current}", set by this run: not set again`, skipped: true };
      }
      const reason = `${reasonPrefix}-${now().toISOString()}`;
      const held = await setRedeploymentReason(k, resource, reason);
      if (held !== reason) throw new KubeError('error', `the server holds forceRedeploymentReason "${held}" after the patch, not "${reason}"`);
      return { summary: `forceRedeploymentReason of ${name} set to "${reason}" (was ${current ? `"${current}"` : 'unset'}): the etcd operator rolls out a new revision of etcd on every master, one at a time` };
    } catch (err) {
      if (!(err instanceof KubeError)) throw err;
      const left = t0 + waitMs - now().getTime();
      if (err.kind === 'not-found' || left <= 0) {
        const caveat = `etcd restored, but the etcd operator was not told to redeploy (${name}: ${err.reason}, after ${looks} attempt${looks === 1 ? '' : 's'}): run \`${byHand}\` once the API answers`;
        ctx.log.warn({ cluster: ctx.cluster.name, err: err.reason }, 'forced redeployment not set');
        return { summary: caveat, caveat };
      }
      ctx.log.info({ cluster: ctx.cluster.name, err: err.reason, leftMs: left }, 'etcd operator resource not reachable yet; trying again');
      await pause(Math.min(ctx.pollMs ?? POLL_MS, left), signal);
    }
  }
}
