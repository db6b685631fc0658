import type { ClusterConfig } from '../../config/schema.js';
import { approvableRows, csrRow, requestHash, type CsrOutcome, type CsrReview, type CsrRow } from '../../csr/review.js';
import { recorder } from '../../incident/record.js';
import { KubeCluster } from '../../kube/client.js';
import { policyContext, reviewCsr, type PolicyContext } from '../../kube/csr-policy.js';
import { decideCsr, getCsr, type Csr } from '../../kube/csrs.js';
import { KubeError } from '../../kube/errors.js';
import { listNodes } from '../../kube/nodes.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { clip, mentionDeciders } from '../../render/csr-message.js';
import { escapeMrkdwn } from '../../render/escape.js';
import type { WorkerContext } from '../context.js';
import { replyTo } from '../reply-to.js';
import { describeRow, pendingWithPolicy, postCsrReview, redrawCsrReview, type CsrDeps } from '../csr-review.js';

type ListJob = JobEnvelope & { request: { name: 'csr' } };
type DecideJob = JobEnvelope & { request: { name: 'csr-decide' } };

/** How many approvals run at once for "approve all": the API server takes them in parallel, within reason. */
const PARALLEL = 8;

const ETCD_STILL_WORKS = 'The etcd commands (`/etcd status`, `/etcd backup`, …) keep working without Kubernetes access.';

function findCluster(ctx: WorkerContext, name: string): ClusterConfig | undefined {
  return ctx.inventory.clusters.find((c) => c.name === name);
}

/** The cluster's Kubernetes API, or the sentence that says what to configure. */
function kubeFor(cluster: ClusterConfig, deps: CsrDeps): KubeCluster | string {
  try {
    return KubeCluster.forCluster(cluster, { timeoutMs: deps.kubeTimeoutMs });
  } catch (err) {
    if (err instanceof KubeError) return `${err.reason}. ${ETCD_STILL_WORKS}`;
    throw err;
  }
}

/** `/etcd csr [cluster]`: one message with every pending CSR, reviewed, with its buttons. */
export async function runCsrList(env: ListJob, ctx: WorkerContext, deps: CsrDeps): Promise<string> {
  const record = recorder(ctx.incidents, ctx.log);
  const name = env.request.data.cluster;
  const cluster = findCluster(ctx, name);
  if (!cluster) {
    await ctx.chat.ephemeral(replyTo(env), `Cluster "${name}" is not in this worker's inventory. Type \`/etcd help\` for the known clusters.`);
    return `unknown cluster ${name}`;
  }
  const k = kubeFor(cluster, deps);
  if (typeof k === 'string') {
    await ctx.chat.ephemeral(replyTo(env), `:information_source: \`/etcd csr\` needs the Kubernetes API of *${name}*: ${k}`);
    await record(env.channelId, { kind: 'state', actor: 'bot', text: `CSRs of ${name} not listed: ${k}` });
    return 'not configured';
  }
  let found;
  try {
    found = await pendingWithPolicy(k, cluster);
  } catch (err) {
    const reason = err instanceof KubeError ? err.reason : (err as Error).message;
    await ctx.chat.ephemeral(replyTo(env), `:x: Could not list the CSRs of *${name}*: ${reason}. Nothing was decided. ${ETCD_STILL_WORKS}`);
    await record(env.channelId, { kind: 'state', actor: 'bot', text: `CSRs of ${name} could not be listed: ${reason}` });
    return `kube error: ${reason}`;
  }
  const now = deps.now?.() ?? new Date();
  const { review, rows } = await postCsrReview(ctx.chat, deps.reviews, { cluster: name, channelId: env.channelId, by: env.userId, title: `Pending CSRs in ${name}`, csrs: found.csrs, policy: found.policy, answer: replyTo(env) }, now);
  const flagged = rows.filter((r) => !r.verdict.pass);
  const summary = rows.length
    ? `${found.csrs.length} pending CSR(s) in ${name} shown (review ${review.id}): ${flagged.length ? `${flagged.length} flagged (${flagged.map((r) => r.name).join(', ')})` : 'none flagged'}`
    : `no pending CSRs in ${name}`;
  await record(env.channelId, { kind: 'state', actor: 'bot', text: summary });
  return summary;
}

/** What happened to one CSR of a decision. */
interface Result {
  name: string;
  row?: CsrRow;
  /** Decided here (approved or denied). */
  done?: { already: boolean; attempts: number; flagged: boolean };
  /** Not decided, and why (for the person who asked and the timeline). */
  refused?: string;
  /** What the message's row shows now, when it changed. */
  outcome?: CsrOutcome;
}

/**
 * One CSR, as drawn in a message (uid and request hash) or named by a person:
 * read it, refuse if it is gone, changed or decided by someone else, else
 * approve or deny it through the approval subresource (409s retried inside).
 * With `check.policy` it is reviewed again as it is now; with `requirePass` a
 * flagged one is refused (approve-all, and several typed names, approve only
 * CSRs that pass).
 */
async function decideOne(
  k: KubeCluster,
  name: string,
  drawn: CsrRow | undefined,
  decision: 'approve' | 'deny',
  userId: string,
  at: string,
  check: { policy?: PolicyContext; requirePass?: boolean } = {},
): Promise<Result> {
  let csr: Csr;
  try {
    csr = await getCsr(k, name);
  } catch (err) {
    const e = err as KubeError;
    if (e.kind === 'not-found') {
      const text = drawn ? `${name} no longer exists: it was deleted since it was shown` : `there is no CSR named ${name} in ${k.cluster}`;
      return { name, row: drawn, refused: text, outcome: drawn ? { state: 'gone', at, text } : undefined };
    }
    return { name, row: drawn, refused: e.reason ?? String(err) };
  }
  if (drawn && (csr.metadata?.uid !== drawn.uid || requestHash(csr.spec?.request) !== drawn.requestHash)) {
    const text = csr.metadata?.uid !== drawn.uid ? `${name} was deleted and filed again since it was shown` : `${name} asks for something else than what was shown`;
    return { name, row: drawn, refused: text, outcome: { state: 'changed', at, text } };
  }
  let row = drawn;
  if (check.policy) {
    row = csrRow(csr, reviewCsr(csr, check.policy));
    if (check.requirePass && !row.verdict.pass) {
      const how = drawn ? 'no longer passes policy' : 'is FLAGGED';
      return { name, row, refused: `${name} ${how} (${row.verdict.reasons.join('; ')}): a flagged CSR is approved only with its own button in \`/etcd csr\`, which shows why it is flagged and asks to confirm` };
    }
  }
  const res = await decideCsr(k, {
    name,
    decision,
    by: `Slack user ${userId}`,
    // The uid and the very request that was checked: anything else written meanwhile is refused.
    expect: { uid: csr.metadata?.uid, request: csr.spec?.request },
  });
  if (res.ok) {
    const state = decision === 'approve' ? 'approved' : 'denied';
    const note = res.attempts > 1 ? `after ${res.attempts - 1} conflict${res.attempts > 2 ? 's' : ''} (409), retried` : undefined;
    return { name, row, done: { already: res.already, attempts: res.attempts, flagged: !!row && !row.verdict.pass }, outcome: { state, by: userId, at, text: note } };
  }
  if (res.refusal === 'decided') return { name, row, refused: res.message, outcome: drawn ? { state: 'decided-elsewhere', at, text: res.message } : undefined };
  if (res.refusal === 'not-found') return { name, row, refused: res.message, outcome: drawn ? { state: 'gone', at, text: res.message } : undefined };
  if (res.refusal === 'changed') return { name, row, refused: res.message, outcome: drawn ? { state: 'changed', at, text: res.message } : undefined };
  return { name, row, refused: res.message };
}

async function inBatches<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const verb = (d: 'approve' | 'deny') => (d === 'approve' ? 'approved' : 'denied');

/**
 * A click on Approve, Deny or "Approve all that pass" (checked for the role by
 * the bot before it was queued), or a typed `/etcd csr approve|deny <name…>`.
 * Every decision and every refusal goes on the incident timeline; the message
 * is redrawn with what became of its rows.
 */
export async function runCsrDecide(env: DecideJob, ctx: WorkerContext, deps: CsrDeps): Promise<string> {
  const d = env.request.data;
  const now = deps.now?.() ?? new Date();
  const at = now.toISOString();
  const record = recorder(ctx.incidents, ctx.log);
  const tell = async (text: string) => {
    await ctx.chat.ephemeral(replyTo(env), clip(text, 3000));
    return text;
  };

  let review: CsrReview | null = null;
  let clusterName = d.cluster ?? '';
  if (d.click) {
    review = await deps.reviews.get(d.click.reviewId);
    if (!review) {
      const why = `the record of that CSR message (${d.click.reviewId}) is gone (older than a week, or Redis lost it)`;
      await record(env.channelId, { kind: 'denied', actor: env.userId, text: `${d.decision} of CSRs refused: ${why}` });
      return tell(`:no_entry: Nothing was ${verb(d.decision)}: ${why}. Type \`/etcd csr\` for a fresh list.`);
    }
    clusterName = review.cluster;
    if (review.channelId !== env.channelId) {
      await record(env.channelId, { kind: 'denied', actor: env.userId, incidentId: review.incidentId, text: `${d.decision} of CSRs of ${clusterName} refused: clicked from another channel than the message's` });
      return tell(`:no_entry: Nothing was ${verb(d.decision)}: that message belongs to <#${review.channelId}>; decide there.`);
    }
  }
  const incidentId = review?.incidentId;
  const refuseAll = async (why: string, names: string[]) => {
    await record(env.channelId, { kind: 'denied', actor: env.userId, incidentId, text: `${d.decision} of CSR ${names.join(', ') || '(all that pass)'} in ${clusterName} refused: ${why}` });
    return tell(`:no_entry: Nothing was ${verb(d.decision)}: ${why}`);
  };

  const cluster = findCluster(ctx, clusterName);
  if (!cluster) return refuseAll(`cluster ${clusterName} is not in this worker's inventory`, d.names ?? []);
  const k = kubeFor(cluster, deps);
  const clickedNames = d.click && !('all' in d.click) ? [d.click.name] : [];
  if (typeof k === 'string') return refuseAll(k, d.names ?? clickedNames);

  let results: Result[];
  let policy: PolicyContext | undefined;
  if (d.click && 'all' in d.click) {
    // Approve all that pass: each CSR of the message that passed when drawn is read again,
    // reviewed again against the cluster as it is now, and approved only if unchanged and still passing.
    const rows = approvableRows(review!, await deps.reviews.outcomes(review!.id));
    if (rows.length === 0) return tell(':information_source: Every CSR of that message that passes policy is already decided; nothing to do.');
    try {
      policy = policyContext(await listNodes(k), cluster);
    } catch (err) {
      return refuseAll((err as KubeError).reason ?? String(err), rows.map((r) => r.name));
    }
    results = await inBatches(rows, PARALLEL, (r) => decideOne(k, r.name, r, 'approve', env.userId, at, { policy, requirePass: true }));
  } else if (d.click) {
    const c = d.click;
    const drawn = review!.rows.find((r) => r.name === c.name && r.uid === c.uid && r.requestHash === c.hash);
    if (!drawn) return refuseAll(`that button does not match CSR ${c.name} as the message shows it`, [c.name]);
    // A row drawn as passing was approvable without a confirm: it must still pass now (its node, the addresses
    // of the cluster may have changed since). A row drawn as flagged was approved through its confirm dialog.
    if (d.decision === 'approve' && drawn.verdict.pass) {
      try {
        policy = policyContext(await listNodes(k), cluster);
      } catch (err) {
        return refuseAll((err as KubeError).reason ?? String(err), [c.name]);
      }
    }
    results = [await decideOne(k, c.name, drawn, d.decision, env.userId, at, policy ? { policy, requirePass: true } : {})];
  } else {
    // Typed: reviewed now; a flagged CSR is never approved by name, only with its own button (whose confirm says why it is flagged).
    const names = d.names ?? [];
    try {
      policy = policyContext(await listNodes(k), cluster);
    } catch (err) {
      return refuseAll((err as KubeError).reason ?? String(err), names);
    }
    const requirePass = d.decision === 'approve';
    results = await inBatches(names, PARALLEL, (name) => decideOne(k, name, undefined, d.decision, env.userId, at, { policy, requirePass }));
  }

  // The timeline: one entry per CSR, who and which.
  for (const r of results) {
    const what = r.row ? describeRow(r.row) : r.name;
    if (r.done) {
      const how = d.click && 'all' in d.click ? ' (approve all that pass)' : '';
      await record(env.channelId, {
        kind: d.decision === 'approve' ? 'approval' : 'rejection',
        actor: env.userId,
        incidentId,
        text: `${r.done.already ? 'had already ' : ''}${verb(d.decision)} CSR ${what} in ${clusterName}${how}${r.done.attempts > 1 ? ` after ${r.done.attempts - 1} conflict(s) (409)` : ''}`,
      });
    } else {
      await record(env.channelId, { kind: 'denied', actor: env.userId, incidentId, text: `${d.decision} of CSR ${what} in ${clusterName} refused: ${r.refused}` });
    }
  }

  const done = results.filter((r) => r.done);
  const refused = results.filter((r) => !r.done);
  const lines = [
    ...done.map((r) => `:white_check_mark: ${r.done!.already ? 'Already ' : ''}${verb(d.decision)} *${escapeMrkdwn(r.name)}*${r.done!.flagged ? ' (FLAGGED)' : ''}${r.outcome?.text ? ` ${r.outcome.text}` : ''}`),
    ...refused.map((r) => `:no_entry: Not ${verb(d.decision)}: ${mentionDeciders(r.refused ?? '')}`),
  ];
  const head = d.click && 'all' in d.click ? `Approve all that pass in *${clusterName}*: ${done.length} approved, ${refused.length} not.` : '';
  const answer = clip([head, ...lines].filter(Boolean).join('\n'), 3000);

  if (review) {
    const outcomes = Object.fromEntries(results.filter((r) => r.outcome).map((r) => [r.name, r.outcome!]));
    await deps.reviews.setOutcomes(review.id, outcomes);
    await redrawCsrReview(ctx.chat, deps.reviews, review.id, ctx.log, deps.now);
    // Who did what, under the message; a wave in an incident's thread has the timeline beside it already.
    if (done.length && review.ts && !review.threadTs) {
      const names = done.map((r) => r.name).join(', ');
      const text = clip(`<@${env.userId}> ${verb(d.decision)} ${done.length === 1 ? 'CSR' : `${done.length} CSRs`} ${escapeMrkdwn(names)}${refused.length ? ` · ${refused.length} not (${escapeMrkdwn(refused.map((r) => r.name).join(', '))})` : ''}`, 2900);
      await ctx.chat.post(review.channelId, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }, review.ts).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not post the CSR decision line'));
    }
    await tell(answer);
  } else {
    // Typed: the channel sees who decided what.
    const text = clip(`<@${env.userId}> in *${clusterName}*:\n${lines.join('\n')}`, 2900);
    await ctx.chat.answer(replyTo(env), { text: `CSR decisions in ${clusterName}`, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] });
  }
  return `${done.length} ${verb(d.decision)}, ${refused.length} refused`;
}
