import { killAtFault } from '../../fault.js';
import { KubeCluster } from '../../kube/client.js';
import { policyContext } from '../../kube/csr-policy.js';
import { csrState, decideCsr, listCsrs, type Csr, type CsrDecisionResult } from '../../kube/csrs.js';
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
import { asideCopyTest, begunOf, begunTest, KubeletRefusal, kubeletPreflight, lookAtBootstrap, traceOnHost } from './kubelet-preflight.js';
import { memberLockPath, underMemberLock } from './member-lock.js';
import { pauseOrStop } from './pause-or-stop.js';

/** Exit status of the aside script when the node cannot bootstrap: it refused before it changed anything. */
export const NO_BOOTSTRAP_EXIT = 3;

/**
 * A shell function that puts back what this run moved aside (only where
 * nothing took its place), starts the kubelet, and says on stderr what it left:
 * `nothing was renewed on this node` only when no aside copy of this run is
 * left; the begun file goes with the last copy.
 */
function putBackFunction(p: KubeletPlace): string[] {
  const asideLeft = `{ ${asideCopyTest(p)}; }`;
  return [
    'medic_kubelet_put_back() {',
    ...putBack(p.certAside, p.cert),
    ...putBack(p.kubeconfigAside, p.kubeconfig),
    sh`  systemctl start ${p.unit} >&2 || true`,
    sh`  local state; state=$(systemctl is-active ${p.unit} 2>/dev/null || true)`,
    `  if ${asideLeft}; then`,
    sh`    echo "its files could not all be put back (this run's copies kept aside: "${p.certAside}" "${p.kubeconfigAside}"), kubelet $state: the node may stay NotReady" >&2`,
    '  else',
    sh`    rm -f ${begunOf(p)}`,
    sh`    echo "its files put back where they were and it was started again ($state): nothing was renewed on this node" >&2`,
    '  fi',
    '}',
  ];
}

/**
 * Stops the kubelet and moves its client certificate and kubeconfig aside, under
 * the host's lock. Looks first: once this run's marker is there (both moved, the
 * kubelet started after), it moves nothing, so the certificate the kubelet got
 * since is never taken for the old one; a file whose aside copy exists (an
 * attempt that died between the two moves) is not moved twice. Refuses, before
 * it stops anything, a node with no bootstrap kubeconfig: it could not come back;
 * when an earlier attempt of this run had begun (stopped it, maybe moved a file),
 * the refusal first puts back what that attempt moved and starts the kubelet.
 */
export function kubeletAsideScript(p: KubeletPlace): string {
  const move = (from: string, to: string) => [
    sh`if [ -e ${to} ] || [ -L ${to} ]; then echo ${from} already aside at ${to} '(an earlier attempt of this step)';`,
    sh`elif [ -L ${from} ]; then target=$(readlink ${from}); mv ${from} ${to}; echo moved ${from} "(a link to $target, left in place)" to ${to};`,
    sh`elif [ -e ${from} ]; then mv ${from} ${to}; echo moved ${from} to ${to};`,
    sh`else echo no ${from} on this host: nothing to move; fi`,
  ];
  const begun = begunOf(p);
  const earlier = `{ ${begunTest(p)}; }`;
  const noBootstrap = `there is no bootstrap kubeconfig at ${p.bootstrapConfig}: without its client certificate the kubelet could not bootstrap`;
  const todo = "Put one there '(kubeadm: kubeadm token create, then a kubeconfig with that token; OpenShift: the node-bootstrapper)' and approve again";
  return [
    ...putBackFunction(p),
    sh`if [ -e ${p.marker} ]; then`,
    sh`  echo this run already moved the kubelet files aside and started it again '('${p.marker}')': nothing is moved now`,
    'else',
    sh`  if [ ! -s ${p.bootstrapConfig} ]; then`,
    // An earlier attempt of this step stopped the kubelet (and may have moved its files): saying "nothing was stopped" would leave it so, unsaid.
    `    if ${earlier}; then`,
    sh`      echo refused: ${noBootstrap}. An earlier attempt of this step, cut off, had stopped the kubelet: >&2`,
    '      medic_kubelet_put_back',
    `      echo ${todo} >&2; exit ${NO_BOOTSTRAP_EXIT}`,
    '    fi',
    sh`    echo refused: ${noBootstrap}, so nothing was stopped or moved. >&2; echo ${todo} >&2; exit ${NO_BOOTSTRAP_EXIT}`,
    '  fi',
    // Once the kubelet is stopped, any failure (a move refused, a full or read-only disk) puts back what is aside and starts it
    // again before the script ends: a failed step never leaves a kubelet stopped. Only where nothing has taken the file's place.
    '  medic_kubelet_undo() {',
    '    local code=$?',
    "    trap - ERR",
    '    echo "failed (exit $code) with the kubelet stopped:" >&2',
    '    medic_kubelet_put_back',
    '    exit $code',
    '  }',
    "  trap medic_kubelet_undo ERR",
    sh`  mkdir -p ${p.asideDir}`,
    sh`  [ -e ${begun} ] || echo kubelet to be stopped and its files moved aside by this run > ${begun}`,
    sh`  systemctl stop ${p.unit}`,
    sh`  echo kubelet stopped '('systemctl stop ${p.unit}')'`,
    ...move(p.cert, p.certAside).map((l) => `  ${l}`),
    ...move(p.kubeconfig, p.kubeconfigAside).map((l) => `  ${l}`),
    sh`  echo both aside, kubelet to be started > ${`${p.marker}.tmp`}`,
    sh`  mv ${`${p.marker}.tmp`} ${p.marker}`,
    sh`  rm -f ${begun}`,
    "  trap - ERR",
    'fi',
  ].join('\n');
}

/**
 * Run when the step, run again after an attempt that was cut off with the
 * kubelet stopped, refuses to go on (the API or the bootstrap token not good any
 * more): what that attempt moved aside goes back and the kubelet is started,
 * unless this run's marker says both were moved and the kubelet started (then
 * it is left as it is). Its words are on stderr, as the aside script's.
 */
export function kubeletPutBackScript(p: KubeletPlace): string {
  return [
    ...putBackFunction(p),
    sh`if [ -e ${p.marker} ]; then echo this run already moved the kubelet files aside and started it again '('${p.marker}')': left as it is >&2; exit 0; fi`,
    'medic_kubelet_put_back',
  ].join('\n');
}

/** Moves an aside copy back to its place, only when nothing has taken that place since. */
function putBack(aside: string, to: string): string[] {
  return [sh`  if { [ -e ${aside} ] || [ -L ${aside} ]; } && [ ! -e ${to} ] && [ ! -L ${to} ]; then mv ${aside} ${to} && echo put ${to} back >&2 || true; fi`];
}

/**
 * How long a started kubelet is watched before the step says it came back. A
 * kubelet that cannot load its flags, config or files exits within a second or
 * two of its start; under Restart=always (kubeadm's unit, RestartSec=10) its unit
 * then shows `activating` (auto-restart) or `failed`, never `active` for long.
 */
export const KUBELET_SETTLE_SECONDS = 5;

/**
 * Starts the kubelet (a no-op when it runs), then watches its unit for
 * KUBELET_SETTLE_SECONDS: once it is seen other than active, prints
 * `medic-kubelet-down <state>` (or `start-failed` with systemctl's words) and
 * the last lines of its journal where journalctl is there.
 */
export function kubeletStartScript(p: KubeletPlace, settleSeconds = KUBELET_SETTLE_SECONDS): string {
  return [
    sh`if ! started=$(systemctl start ${p.unit} 2>&1); then echo "medic-kubelet-down start-failed: $started"; exit 0; fi`,
    sh`state=$(systemctl is-active ${p.unit} || true)`,
    sh`echo kubelet started '('systemctl start ${p.unit}'):' "$state", bootstrapping with ${p.bootstrapConfig} when it has no client certificate`,
    `for i in $(seq 1 ${settleSeconds * 4}); do`,
    sh`  state=$(systemctl is-active ${p.unit} || true)`,
    '  if [ "$state" != active ]; then',
    sh`    echo "medic-kubelet-down $state"`,
    sh`    if command -v journalctl >/dev/null 2>&1; then journalctl -u ${p.unit} -n 5 --no-pager 2>/dev/null || true; fi`,
    '    exit 0',
    '  fi',
    '  sleep 0.25',
    'done',
    sh`echo still active ${settleSeconds} s after its start`,
    // A kubelet that has its client certificate again (it bootstrapped since an earlier attempt started it) needs no token.
    sh`if [ -e ${p.cert} ]; then echo medic-has-client-cert ${p.cert}; fi`,
  ].join('\n');
}

/** The words of a kubelet that did not come back, from the start script's output (null: it came back). */
export function kubeletDown(out: string): string | null {
  return /^medic-kubelet-down (.+)$/m.exec(out)?.[1] ?? null;
}

/** The place a step names (its params are exactly a KubeletPlace). */
function placeOf(step: StepOf<'kubelet-rebootstrap'>): KubeletPlace {
  return { ...step.params };
}

/**
 * The kubelet-rebootstrap step: the aside script, then the start script, each
 * under the host's lock. A worker that dies between the two leaves the kubelet
 * stopped with its files aside; the step run again moves nothing (the marker)
 * and starts it. One that dies inside the aside script leaves its begun file:
 * the step run again goes on, or, when the checks now refuse, puts back what
 * was moved and starts the kubelet before it fails, saying so.
 */
export async function rebootstrapKubelet(ctx: HostStepContext, step: StepOf<'kubelet-rebootstrap'>, signal?: AbortSignal, later: KubeletPlace[] = []): Promise<StepResult> {
  const p = placeOf(step);
  const target = ctx.target(p.node);
  const lock = { path: memberLockPath(p.asideDir), waitSeconds: lockWaitSeconds(ctx.cluster) };
  // Once this run moved the files aside, the kubelet is only started again: nothing is checked that could keep it stopped.
  const trace = await traceOnHost(ctx, p, signal);
  let checked: string[] = [];
  if (trace !== 'marker') {
    try {
      checked = await kubeletPreflight(ctx, [p, ...later.filter((l) => l.node !== p.node)], signal);
    } catch (err) {
      if (trace !== 'begun' || !(err instanceof KubeletRefusal) || signal?.aborted) throw err;
      // An attempt of this step was cut off after it began (its worker died mid-script): the kubelet may be stopped, a file
      // aside. Refusing now must not leave it so while saying nothing was stopped: what it moved goes back, the kubelet starts.
      const back = await runScript(target, underMemberLock(lock, kubeletPutBackScript(p)), { signal }).catch((e: Error) => `could not put it back: ${e.message}`);
      const verdict = /nothing was renewed on this node/.test(back) ? /its files put back[^\n]*nothing was renewed on this node/.exec(back)![0] : `${back.slice(-500)}; its kubelet may be stopped with its files aside (${p.certAside}, ${p.kubeconfigAside})`;
      throw new Error(`refused to go on with the kubelet of ${p.node}: ${err.why}. An earlier attempt of this step was cut off after it had stopped that kubelet: ${verdict}. ${err.todo}`);
    }
  }
  const aside = await runScript(target, underMemberLock(lock, kubeletAsideScript(p)), { signal });
  killAtFault('kubelet-aside'); // tests only: the worker dies with the kubelet stopped and its files aside
  const started = await runScript(target, underMemberLock(lock, kubeletStartScript(p)), { signal, timeoutMs: (lock.waitSeconds + KUBELET_SETTLE_SECONDS + 60) * 1000 });
  const down = kubeletDown(started);
  if (down) {
    // Said now, not at the CSR step's bound: the run stops here, and no other kubelet is restarted.
    throw new Error(
      `the kubelet of ${p.node} did not come back: ${down.startsWith('start-failed') ? `systemctl start ${p.unit} failed (${down.replace(/^start-failed: /, '').trim().slice(0, 300)})` : `\`systemctl is-active ${p.unit}\` said ${down} within ${KUBELET_SETTLE_SECONDS} s of its start (its process exits: a flag, config or file it cannot load)`}. ` +
        `Its client certificate and kubeconfig are aside (${p.certAside}, ${p.kubeconfigAside}), so it stays NotReady. On ${p.node}: \`journalctl -u ${p.unit} -n 50\`; once fixed, \`systemctl restart ${p.unit}\` and approve its CSRs (\`/etcd csr ${ctx.cluster.name}\`). No other kubelet is restarted by this run.\n${started.slice(-600)}`,
    );
  }
  // The bootstrap token asked again now the kubelet runs without its certificate: one that expired since the check before the
  // stop (or while a worker that died left the step half-done) leaves the kubelet unable to file its CSR. Said now, by name.
  const after = /^medic-has-client-cert /m.test(started) ? null : await tokenAfterStart(ctx, p, signal);
  if (after && !after.ok && (after.kind === 'rejected' || after.kind === 'forbidden' || after.kind === 'missing')) {
    throw new Error(
      `the kubelet of ${p.node} was started without its client certificate, but ${after.why}. It stays NotReady until one of: a new token (${NEW_TOKEN_HINT} ${p.bootstrapConfig} on ${p.node}), then \`systemctl restart ${p.unit}\` there and its CSRs approved (\`/etcd csr ${ctx.cluster.name}\`); or its old files back, on ${p.node}: \`mv ${p.certAside} ${p.cert} && mv ${p.kubeconfigAside} ${p.kubeconfig} && systemctl restart ${p.unit}\`. No other kubelet is restarted by this run.`,
    );
  }
  const again = aside.includes('already moved the kubelet files');
  return {
    summary: again
      ? `kubelet of ${p.node}: its files were already aside from an earlier attempt (nothing moved now); started`
      : `kubelet of ${p.node} stopped, ${p.cert} and ${p.kubeconfig} moved aside (${p.certAside}, ${p.kubeconfigAside}), started again: it bootstraps`,
    output: [...checked, aside, started, ...(after ? [after.ok ? `after the start: ${after.line}` : `after the start: not checked (${after.why})`] : [])].join('\n'),
  };
}

const NEW_TOKEN_HINT = 'kubeadm: `kubeadm token create` on a master, put in place of the old one in';

/** The node's bootstrap credential asked again once its kubelet was started (null: the cluster has no kubeconfig to ask with). */
async function tokenAfterStart(ctx: HostStepContext, p: KubeletPlace, signal?: AbortSignal) {
  let k: KubeCluster;
  try {
    k = KubeCluster.forCluster(ctx.cluster);
  } catch {
    return null;
  }
  return lookAtBootstrap(ctx, k, p, new Map(), signal);
}

const POLL_MS = 1500;
const SERVING_GRACE_MS = 10_000;
/** CSRs filed this long before the run began still count as its own (clocks of the bot and the API server differ). */
const CLOCK_SKEW_MS = 60_000;

const pause = (ms: number, signal?: AbortSignal) => pauseOrStop(ms, 'the kubelets', signal);

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** What the CSR step reads and changes in the cluster: the Kubernetes API, or a stand-in in tests. */
export interface RenewalApi {
  read(): Promise<{ csrs: Csr[]; nodes: KubeNode[] }>;
  approve(csr: Csr, by: string): Promise<CsrDecisionResult>;
}

function renewalApiOf(k: KubeCluster): RenewalApi {
  return {
    read: async () => {
      const [list, nodes] = await Promise.all([listCsrs(k), listNodes(k)]);
      return { csrs: list.items, nodes };
    },
    // The very CSR that was reviewed (uid and request): one filed again meanwhile under its name is not approved.
    approve: (csr, by) => decideCsr(k, { name: csr.metadata!.name!, decision: 'approve', by, expect: { uid: csr.metadata?.uid, request: csr.spec?.request } }),
  };
}

/**
 * When each node's kubelet was stopped (its restart step's start, less the
 * clock skew): a CSR for that node filed before then is not from the restarted
 * kubelet. A node whose step has no start recorded falls back to the run's.
 */
export function renewalSince(run: Run): { since: Date; nodeSince: Record<string, Date> } {
  const since = new Date(Date.parse(run.createdAt) - CLOCK_SKEW_MS);
  const nodeSince: Record<string, Date> = {};
  run.steps.forEach((s, i) => {
    const at = run.records[i]?.startedAt;
    if (s.kind === 'kubelet-rebootstrap' && at) nodeSince[s.params.node] = new Date(Math.max(since.getTime(), Date.parse(at) - CLOCK_SKEW_MS));
  });
  return { since, nodeSince };
}

/**
 * The kubelet-csrs step: looks every second or two at the CSRs and Nodes,
 * approves the pending kubelet CSRs of the run's nodes that pass the policy (for
 * the person who approved the step: the CSR's condition names them), and posts
 * each wave in the run's thread, once per CSR (claimed in Redis, so a resumed
 * step does not post a wave twice; approving again is a no-op). Flagged CSRs are
 * shown with their buttons and left to people. Done when every node is back
 * (see lookAtRenewal); at the bound the run ends with a caveat naming the rest.
 * It stops approving at once on a stop request or when this worker lost the run
 * lease (another worker may run the step, or the run may have ended meanwhile).
 */
/** How a kubelet's unit is asked on its host (`systemctl is-active`): its state, or null when the host could not be asked. */
export type UnitLook = (node: string) => Promise<{ unit: string; state: string } | null>;

/** How often the units of the kubelets not back yet are asked while the CSRs are waited for. */
const UNIT_LOOK_MS = 10_000;

/**
 * The kubelets' units as the run's restart steps name them, asked over SSH on
 * each node's host: a kubelet that stopped running while its CSRs are waited
 * for is named then, not at the step's bound.
 */
export function unitLookOf(host: HostStepContext, run: Run, signal?: AbortSignal): UnitLook {
  const units = new Map(run.steps.flatMap((s) => (s.kind === 'kubelet-rebootstrap' ? [[s.params.node, s.params.unit] as const] : [])));
  return async (node) => {
    const unit = units.get(node);
    if (!unit) return null;
    try {
      const out = await runScript(host.target(node), sh`systemctl is-active ${unit} || true`, { signal, timeoutMs: 15_000 });
      return { unit, state: out.trim().split('\n').pop() ?? '' };
    } catch {
      return null;
    }
  };
}

export async function approveKubeletCsrs(ctx: KubeStepContext, run: Run, index: number, step: StepOf<'kubelet-csrs'>, stop?: AbortSignal, leaseLost?: AbortSignal, api?: RenewalApi, units?: UnitLook): Promise<StepResult> {
  const now = ctx.now ?? (() => new Date());
  const c = ctx.cluster;
  if (!c.kubeconfig) throw new Error(`${c.name} has no kubeconfig: the kubelets' CSRs cannot be approved (set clusters[].kubeconfig)`);
  // `api`: tests give a stand-in of the cluster (their csrThread then needs no client).
  const k = api ? undefined : KubeCluster.forCluster(c);
  const io = api ?? renewalApiOf(k!);
  const thread = ctx.csrThread?.(k as KubeCluster);
  const signals = [stop, leaseLost].filter((x): x is AbortSignal => !!x);
  const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
  const halted = () => {
    if (leaseLost?.aborted) throw new Error('this worker lost the run lease: it approves nothing more (another worker may run this step now)');
    if (signal?.aborted) throw new Error('stopped while waiting for the kubelets');
  };
  const approver = run.records[index]?.approvedBy ?? run.requestedBy;
  const names = step.params.nodes;
  const { since, nodeSince } = renewalSince(run);
  const sinceOf = (n: string) => (nodeSince[n] ?? since).getTime();
  const waitMs = step.params.waitSeconds * 1000;
  const graceMs = ctx.servingGraceMs ?? SERVING_GRACE_MS;
  const pollMs = ctx.pollMs ?? POLL_MS;
  const t0 = now().getTime();
  const readySince = new Map<string, number>();
  let waves = 0;
  let lastCsrs: Csr[] = [];
  let lastNodes: KubeNode[] = [];
  // Nodes whose kubelet was found not running, with its unit's state; asked every UNIT_LOOK_MS.
  const down = new Map<string, { unit: string; state: string }>();
  let unitsAskedAt = -Infinity;
  for (let looks = 1; ; looks++) {
    halted();
    let problem: string | null = null;
    try {
      const seen = await io.read();
      lastCsrs = seen.csrs;
      lastNodes = seen.nodes;
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
      nodeSince,
      policy: policyContext(lastNodes, c),
      servingGraceOver: (n) => at - (readySince.get(n) ?? at) >= graceMs,
    });
    let approvedNow = 0;
    if (!problem && look.approve.length) {
      const approved: RenewCsr[] = [];
      const refused: { item: RenewCsr; why: string }[] = [];
      for (const item of look.approve) {
        halted();
        const res = await io.approve(item.csr, `Slack user ${approver}`);
        if (res.ok) approved.push(item);
        else refused.push({ item, why: res.message });
      }
      approvedNow = approved.length;
      if (approved.length && thread) {
        const kinds = [...new Set(approved.map((a) => a.kind))].join(' and ');
        const text = `:white_check_mark: Wave ${++waves}: approved ${plural(approved.length, `kubelet ${kinds} CSR`)} for <@${approver}>, each passing the CSR policy: ${waveText(approved)}`;
        await thread.announce(approved.map((a) => a.csr.metadata!.uid!), text).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post the wave in the run thread'));
      }
      if (refused.length) {
        ctx.log.warn({ refused: refused.map((r) => `${r.item.csr.metadata?.name}: ${r.why}`) }, 'some kubelet CSRs were not approved');
        // Said once per CSR in the thread (and on the timeline): a bot that cannot approve must not look as if it waits for the kubelets.
        const text = `:warning: Could not approve ${plural(refused.length, 'kubelet CSR')}: ${refused.map((r) => `${r.item.csr.metadata?.name} (${r.item.kind} for ${r.item.node}): ${r.why}`).join('; ')}. The bot tries again at its next look; \`/etcd csr ${c.name}\` shows them.`;
        await thread?.announce(refused.map((r) => `refused:${r.item.csr.metadata!.uid!}`), text.slice(0, 2900)).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post the refused approvals'));
      }
    }
    // Look again at once only when something was approved (what the nodes waited for); approvals that fail wait for the next look like any other.
    if (approvedNow > 0) continue;
    if (!problem && look.flagged.length && thread) {
      await thread.show(look.flagged.map((f) => f.csr), `FLAGGED CSRs of ${[...new Set(look.flagged.map((f) => f.node))].join(', ')}: not approved by the bot, for people to decide`).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post the flagged CSRs'));
      const text = `:warning: Not approved by the bot, for people to decide: ${look.flagged.map((f) => `${f.csr.metadata?.name} (kubelet ${f.kind} for ${f.node}): ${f.verdict.reasons.join('; ')}`).join(' | ')}`;
      await thread.announce(look.flagged.map((f) => `flagged:${f.csr.metadata!.uid!}`), text.slice(0, 2900)).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post why CSRs were flagged'));
    }
    // A node still waited for whose kubelet is not running files no CSR: said in the thread once, at once.
    if (units && !problem && at - unitsAskedAt >= (ctx.unitLookMs ?? UNIT_LOOK_MS)) {
      unitsAskedAt = at;
      for (const n of Object.keys(look.waiting)) {
        halted();
        const u = await units(n);
        if (!u) continue;
        if (u.state === 'active') {
          down.delete(n);
          continue;
        }
        down.set(n, u);
        const text = `:x: The kubelet of ${n} is not running (\`systemctl is-active ${u.unit}\`: ${u.state}) ${((at - t0) / 1000).toFixed(0)} s into the wait for its CSRs: it files none, and its node stays NotReady. On ${n}: \`journalctl -u ${u.unit} -n 50\`; once it runs again, its CSRs are approved here while this step waits.`;
        await thread?.announce([`kubelet-down:${run.runId}:${n}`], text).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post the kubelet that is down'));
      }
    }
    const at2 = now();
    const waited = `${((at2.getTime() - t0) / 1000).toFixed(1)} s, ${plural(looks, 'look')}`;
    const byNode = names.map((n) => {
      const mine = csrsOfNode(lastCsrs, n).filter((x) => Date.parse(String(x.metadata?.creationTimestamp ?? 0)) >= sinceOf(n));
      const csrs = mine.map((x) => `${x.metadata?.name} (${x.spec?.signerName?.endsWith('serving') ? 'serving' : 'client'}): ${csrState(x).state}${approverOf(x) ? ` by ${approverOf(x)}` : ''}`);
      return `${n}: ${look.waiting[n]?.join(', ') ?? 'Ready'}${csrs.length ? `; ${csrs.join(', ')}` : ''}`;
    });
    const output = byNode.join('\n');
    if (!problem && Object.keys(look.waiting).length === 0) {
      const approvedCount = names.flatMap((n) => csrsOfNode(lastCsrs, n).filter((x) => Date.parse(String(x.metadata?.creationTimestamp ?? 0)) >= sinceOf(n))).filter((x) => approverOf(x) !== null).length;
      return { summary: `${names.join(', ')} Ready; ${plural(approvedCount, 'kubelet CSR')} of theirs approved since their kubelets were restarted (after ${waited})`, output };
    }
    const left = t0 + waitMs - at2.getTime();
    // Every node not back has a kubelet that is not running: waiting on to the bound would change nothing.
    const stuck = !problem && Object.keys(look.waiting).length > 0 && Object.keys(look.waiting).every((n) => down.has(n));
    if (stuck) {
      const which = Object.keys(look.waiting).map((n) => `${n}: its kubelet is not running (\`systemctl is-active ${down.get(n)!.unit}\`: ${down.get(n)!.state}), ${look.waiting[n]!.join(', ')}`);
      const caveat = `kubelets not all back: ${which.join('; ')} (seen after ${waited}; the wait ends now rather than at its ${step.params.waitSeconds} s bound). On each, \`journalctl -u <unit> -n 50\`; once it runs, approve its CSRs with \`/etcd csr ${c.name}\`.`;
      return { summary: caveat, output, caveat, offer: { command: 'csr', args: [c.name], label: `/etcd csr ${c.name}` } };
    }
    if (left <= 0) {
      const missing = problem ? [`the cluster could not be read: ${problem}`] : Object.entries(look.waiting).map(([n, w]) => `${n}: ${w.join(', ')}`);
      const caveat = `kubelets not all back: ${missing.join('; ')} (checked for ${waited}).${look.flagged.length ? ' FLAGGED CSRs wait in this thread for a person.' : ''} Their CSRs: \`/etcd csr ${c.name}\`.`;
      return { summary: caveat, output, caveat, offer: { command: 'csr', args: [c.name], label: `/etcd csr ${c.name}` } };
    }
    await pause(Math.min(pollMs, left), signal);
  }
}
