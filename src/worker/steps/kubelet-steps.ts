import { killAtFault } from '../../fault.js';
import { KubeCluster } from '../../kube/client.js';
import { policyContext } from '../../kube/csr-policy.js';
import { csrState, decideCsr, listCsrs, type Csr } from '../../kube/csrs.js';
import { KubeError } from '../../kube/errors.js';
import { lookAtRenewal, waveText, type RenewCsr } from '../../kube/kubelet-renew.js';
import { approverOf, csrsOfNode } from '../../kube/node-csrs.js';
import { listNodes, summarizeNode, type KubeNode } from '../../kube/nodes.js';
import type { KubeletPlace } from '../../platform/index.js';
import type { StepResult } from '../../runbook/engine.js';
import type { Run, StepOf } from '../../runbook/types.js';
import { sh } from '../../ssh/shell.js';
import { lockWaitSeconds, runScript, type HostStepContext } from './host-steps.js';
import type { KubeStepContext } from './kube-steps.js';
import { memberLockPath, underMemberLock } from './member-lock.js';

/** Exit status of the aside script when the node cannot bootstrap: it refused before it changed anything. */
export const NO_BOOTSTRAP_EXIT = 3;

/**
 * Stops the kubelet and moves its client certificate and kubeconfig aside, under
 * the host's lock. Looks first: once this run's marker is there (both moved, the
 * kubelet started after), it moves nothing, so the certificate the kubelet got
 * since is never taken for the old one; a file whose aside copy exists (an
 * attempt that died between the two moves) is not moved twice. Refuses, before
 * it stops anything, a node with no bootstrap kubeconfig: it could not come back.
 */
export function kubeletAsideScript(p: KubeletPlace): string {
  const move = (from: string, to: string) => [
    sh`if [ -e ${to} ] || [ -L ${to} ]; then echo ${from} already aside at ${to} '(an earlier attempt of this step)';`,
    sh`elif [ -L ${from} ]; then target=$(readlink ${from}); mv ${from} ${to}; echo moved ${from} "(a link to $target, left in place)" to ${to};`,
    sh`elif [ -e ${from} ]; then mv ${from} ${to}; echo moved ${from} to ${to};`,
    sh`else echo no ${from} on this host: nothing to move; fi`,
  ];
  return [
    sh`if [ -e ${p.marker} ]; then`,
    sh`  echo this run already moved the kubelet files aside and started it again '('${p.marker}')': nothing is moved now`,
    'else',
    sh`  if [ ! -s ${p.bootstrapConfig} ]; then echo refused: there is no bootstrap kubeconfig at ${p.bootstrapConfig}: without its client certificate the kubelet could not bootstrap, so nothing was stopped or moved. Put one there '(kubeadm: kubeadm token create, then a kubeconfig with that token; OpenShift: the node-bootstrapper)' and approve again >&2; exit ${NO_BOOTSTRAP_EXIT}; fi`,
    sh`  systemctl stop ${p.unit}`,
    sh`  echo kubelet stopped '('systemctl stop ${p.unit}')'`,
    sh`  mkdir -p ${p.asideDir}`,
    ...move(p.cert, p.certAside).map((l) => `  ${l}`),
    ...move(p.kubeconfig, p.kubeconfigAside).map((l) => `  ${l}`),
    sh`  echo both aside, kubelet to be started > ${`${p.marker}.tmp`}`,
    sh`  mv ${`${p.marker}.tmp`} ${p.marker}`,
    'fi',
  ].join('\n');
}

/** Starts the kubelet (a no-op when it runs) and says whether it is active. */
export function kubeletStartScript(p: KubeletPlace): string {
  return [
    sh`systemctl start ${p.unit}`,
    sh`state=$(systemctl is-active ${p.unit} || true)`,
    sh`echo kubelet started '('systemctl start ${p.unit}'):' "$state", bootstrapping with ${p.bootstrapConfig} when it has no client certificate`,
  ].join('\n');
}

/** The place a step names (its params are exactly a KubeletPlace). */
function placeOf(step: StepOf<'kubelet-rebootstrap'>): KubeletPlace {
  return { ...step.params };
}

/**
 * The kubelet-rebootstrap step: the aside script, then the start script, each
 * under the host's lock. A worker that dies between the two leaves the kubelet
 * stopped with its files aside; the step run again moves nothing (the marker)
 * and starts it.
 */
export async function rebootstrapKubelet(ctx: HostStepContext, step: StepOf<'kubelet-rebootstrap'>, signal?: AbortSignal): Promise<StepResult> {
  const p = placeOf(step);
  const target = ctx.target(p.node);
  const lock = { path: memberLockPath(p.asideDir), waitSeconds: lockWaitSeconds(ctx.cluster) };
  const aside = await runScript(target, underMemberLock(lock, kubeletAsideScript(p)), { signal });
  killAtFault('kubelet-aside'); // tests only: the worker dies with the kubelet stopped and its files aside
  const started = await runScript(target, underMemberLock(lock, kubeletStartScript(p)), { signal });
  const again = aside.includes('already moved the kubelet files');
  return {
    summary: again
      ? `kubelet of ${p.node}: its files were already aside from an earlier attempt (nothing moved now); started`
      : `kubelet of ${p.node} stopped, ${p.cert} and ${p.kubeconfig} moved aside (${p.certAside}, ${p.kubeconfigAside}), started again: it bootstraps`,
    output: `${aside}\n${started}`,
  };
}

const POLL_MS = 1500;
const SERVING_GRACE_MS = 10_000;
/** CSRs filed this long before the run began still count as its own (clocks of the bot and the API server differ). */
const CLOCK_SKEW_MS = 60_000;

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('stopped while waiting for the kubelets'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('stopped while waiting for the kubelets'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * The kubelet-csrs step: looks every second or two at the CSRs and Nodes,
 * approves the pending kubelet CSRs of the run's nodes that pass the policy (for
 * the person who approved the step: the CSR's condition names them), and posts
 * each wave in the run's thread, once per CSR (claimed in Redis, so a resumed
 * step does not post a wave twice; approving again is a no-op). Flagged CSRs are
 * shown with their buttons and left to people. Done when every node is back
 * (see lookAtRenewal); at the bound the run ends with a caveat naming the rest.
 */
export async function approveKubeletCsrs(ctx: KubeStepContext, run: Run, index: number, step: StepOf<'kubelet-csrs'>, signal?: AbortSignal): Promise<StepResult> {
  const now = ctx.now ?? (() => new Date());
  const c = ctx.cluster;
  if (!c.kubeconfig) throw new Error(`${c.name} has no kubeconfig: the kubelets' CSRs cannot be approved (set clusters[].kubeconfig)`);
  const k = KubeCluster.forCluster(c);
  const thread = ctx.csrThread?.(k);
  const approver = run.records[index]?.approvedBy ?? run.requestedBy;
  const names = step.params.nodes;
  const since = new Date(Date.parse(run.createdAt) - CLOCK_SKEW_MS);
  const waitMs = step.params.waitSeconds * 1000;
  const graceMs = ctx.servingGraceMs ?? SERVING_GRACE_MS;
  const pollMs = ctx.pollMs ?? POLL_MS;
  const t0 = now().getTime();
  const readySince = new Map<string, number>();
  let waves = 0;
  let lastCsrs: Csr[] = [];
  let lastNodes: KubeNode[] = [];
  for (let looks = 1; ; looks++) {
    let problem: string | null = null;
    try {
      const [list, nodes] = await Promise.all([listCsrs(k), listNodes(k)]);
      lastCsrs = list.items;
      lastNodes = nodes;
    } catch (err) {
      problem = err instanceof KubeError ? err.reason : (err as Error).message;
    }
    const at = now().getTime();
    for (const n of names) {
      const node = lastNodes.find((x) => x.metadata?.name === n);
      if (node && summarizeNode(node).ready === true) {
        if (!readySince.has(n)) readySince.set(n, at);
      } else readySince.delete(n);
    }
    const look = lookAtRenewal({
      csrs: lastCsrs,
      nodes: lastNodes,
      names,
      since,
      policy: policyContext(lastNodes, c),
      servingGraceOver: (n) => at - (readySince.get(n) ?? at) >= graceMs,
    });
    if (!problem && look.approve.length) {
      const approved: RenewCsr[] = [];
      const refused: string[] = [];
      for (const item of look.approve) {
        // The very CSR that was reviewed (uid and request): one filed again meanwhile under its name is not approved.
        const res = await decideCsr(k, { name: item.csr.metadata!.name!, decision: 'approve', by: `Slack user ${approver}`, expect: { uid: item.csr.metadata?.uid, request: item.csr.spec?.request } });
        if (res.ok) approved.push(item);
        else refused.push(`${item.csr.metadata?.name}: ${res.message}`);
      }
      if (approved.length && thread) {
        const kinds = [...new Set(approved.map((a) => a.kind))].join(' and ');
        const text = `:white_check_mark: Wave ${++waves}: approved ${plural(approved.length, `kubelet ${kinds} CSR`)} for <@${approver}>, each passing the CSR policy: ${waveText(approved)}`;
        await thread.announce(approved.map((a) => a.csr.metadata!.uid!), text).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post the wave in the run thread'));
      }
      if (refused.length) ctx.log.warn({ refused }, 'some kubelet CSRs were not approved');
      continue; // look again at once: approving is what the nodes waited for
    }
    if (!problem && look.flagged.length && thread) {
      await thread.show(look.flagged.map((f) => f.csr), `FLAGGED CSRs of ${[...new Set(look.flagged.map((f) => f.node))].join(', ')}: not approved by the bot, for people to decide`).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post the flagged CSRs'));
    }
    const at2 = now();
    const waited = `${((at2.getTime() - t0) / 1000).toFixed(1)} s, ${plural(looks, 'look')}`;
    const byNode = names.map((n) => {
      const mine = csrsOfNode(lastCsrs, n).filter((x) => Date.parse(String(x.metadata?.creationTimestamp ?? 0)) >= since.getTime());
      const csrs = mine.map((x) => `${x.metadata?.name} (${x.spec?.signerName?.endsWith('serving') ? 'serving' : 'client'}): ${csrState(x).state}${approverOf(x) ? ` by ${approverOf(x)}` : ''}`);
      return `${n}: ${look.waiting[n]?.join(', ') ?? 'Ready'}${csrs.length ? `; ${csrs.join(', ')}` : ''}`;
    });
    const output = byNode.join('\n');
    if (!problem && Object.keys(look.waiting).length === 0) {
      const approvedCount = names.flatMap((n) => csrsOfNode(lastCsrs, n)).filter((x) => Date.parse(String(x.metadata?.creationTimestamp ?? 0)) >= since.getTime() && approverOf(x) !== null).length;
      return { summary: `${names.join(', ')} Ready; ${plural(approvedCount, 'kubelet CSR')} of theirs approved since the run began (after ${waited})`, output };
    }
    const left = t0 + waitMs - at2.getTime();
    if (left <= 0) {
      const missing = problem ? [`the cluster could not be read: ${problem}`] : Object.entries(look.waiting).map(([n, w]) => `${n}: ${w.join(', ')}`);
      const caveat = `kubelets not all back: ${missing.join('; ')} (checked for ${waited}).${look.flagged.length ? ' FLAGGED CSRs wait in this thread for a person.' : ''}`;
      return { summary: caveat, output, caveat };
    }
    await pause(Math.min(pollMs, left), signal);
  }
}
