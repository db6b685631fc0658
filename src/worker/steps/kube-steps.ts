import type { ClusterConfig } from '../../config/schema.js';
import { KubeCluster } from '../../kube/client.js';
import { kubeShortfall, nodeNotReady, readyzProblem, sinceText, viewControlPlane, type ControlPlaneView } from '../../kube/control-plane.js';
import { KubeError } from '../../kube/errors.js';
import type { Logger } from '../../log.js';
import type { StepResult } from '../../runbook/engine.js';
import { param } from '../../runbook/params.js';
import type { CommandOffer, StepSpec } from '../../runbook/types.js';

export interface KubeStepContext {
  cluster: ClusterConfig;
  log: Logger;
  /** How long between two looks while Kubernetes is not ready yet. */
  pollMs?: number;
  now?: () => Date;
}

const POLL_MS = 3000;

/** Sleeps, or ends early with an error when the run is asked to stop. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('stopped while waiting for Kubernetes'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('stopped while waiting for Kubernetes'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

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
export async function kubeCheck(ctx: KubeStepContext, step: StepSpec, signal?: AbortSignal): Promise<StepResult> {
  const now = ctx.now ?? (() => new Date());
  const c = ctx.cluster;
  if (!c.kubeconfig) {
    return { summary: 'Kubernetes not checked: no kubeconfig for this cluster (set clusters[].kubeconfig in the inventory to check kube-apiserver and the control-plane nodes after a restore)' };
  }
  let k: KubeCluster;
  try {
    k = KubeCluster.forCluster(c);
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    // Configured but unusable: said at the run's end, since nobody will have looked at Kubernetes.
    return { summary: `Kubernetes not checked: ${err.reason}`, caveat: `etcd healthy, Kubernetes not checked: ${err.reason}` };
  }
  const waitMs = Number(param(step, 'waitSeconds')) * 1000;
  const t0 = now().getTime();
  const pollMs = ctx.pollMs ?? POLL_MS;
  for (let looks = 1; ; looks++) {
    const view = await viewControlPlane(k, c, now);
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
