import type { ClusterConfig } from '../config/schema.js';
import { csrRow, DETAIL_MAX, COMPACT_MAX, rowPurpose, type CsrReview, type CsrRow } from '../csr/review.js';
import type { CsrReviewStore } from '../csr/review-store.js';
import type { KubeCluster } from '../kube/client.js';
import { policyContext, reviewCsr, type PolicyContext } from '../kube/csr-policy.js';
import { listPendingCsrs, type Csr } from '../kube/csrs.js';
import { listNodes } from '../kube/nodes.js';
import type { Logger } from '../log.js';
import { renderCsrReview } from '../render/csr-message.js';
import type { Chat, ReplyTo } from '../chat/port.js';
import { escapeMrkdwn } from '../render/escape.js';

/** What the CSR jobs and the incident watch share in a worker. */
export interface CsrDeps {
  reviews: CsrReviewStore;
  /** Bound of each Kubernetes call (default: the client's, 5 s). */
  kubeTimeoutMs?: number;
  now?: () => Date;
}

/** Rows kept with a message (detailed and one-line); beyond these a message names the CSRs only. */
const ROWS_KEPT = DETAIL_MAX + COMPACT_MAX;
const NAMES_KEPT = 1000;

/** The pending CSRs of a cluster (oldest first) and what the policy needs to judge them: its Nodes and the inventory's masters. */
export async function pendingWithPolicy(k: KubeCluster, cluster: ClusterConfig): Promise<{ csrs: Csr[]; policy: PolicyContext }> {
  const [csrs, nodes] = await Promise.all([listPendingCsrs(k), listNodes(k)]);
  return { csrs, policy: policyContext(nodes, cluster) };
}

export interface PostReview {
  cluster: string;
  channelId: string;
  /** Post into this thread (an incident's, a run's). */
  threadTs?: string;
  incidentId?: string;
  /** Who asked (a Slack user ID), or "bot". */
  by: string;
  title: string;
  csrs: Csr[];
  policy: PolicyContext;
  /** A slash command's: posts as its answer (through response_url where the bot may not post). */
  answer?: ReplyTo;
}

/**
 * Reviews each CSR against the policy, keeps what the message shows in Redis
 * (so any worker can act on its buttons and redraw it), and posts it. The
 * message's buttons carry the review's ID and each CSR's uid and request hash.
 */
export async function postCsrReview(chat: Chat, reviews: CsrReviewStore, p: PostReview, now = new Date()): Promise<{ review: CsrReview; rows: CsrRow[] }> {
  const rows = p.csrs.slice(0, ROWS_KEPT).map((c) => csrRow(c, reviewCsr(c, p.policy)));
  const review: CsrReview = {
    id: reviews.newId(),
    cluster: p.cluster,
    channelId: p.channelId,
    threadTs: p.threadTs,
    incidentId: p.incidentId,
    by: p.by,
    title: p.title,
    createdAt: now.toISOString(),
    rows,
    more: p.csrs.slice(ROWS_KEPT, ROWS_KEPT + NAMES_KEPT).map((c) => c.metadata?.name ?? ''),
  };
  // Saved before it is posted: a click can come as soon as Slack shows it.
  await reviews.save(review);
  const msg = renderCsrReview(review, {}, now);
  const ts = p.answer && !p.threadTs ? (await chat.answer(p.answer, msg)).ts : await chat.post(p.channelId, msg, p.threadTs);
  if (ts) {
    review.ts = ts;
    await reviews.setTs(review.id, ts);
  }
  return { review, rows };
}

/**
 * Redraws a review's message with what became of its rows. Two workers may
 * redraw at once: each checks afterwards that no decision landed meanwhile
 * and draws again if one did, so the last drawing shows every decision.
 */
export async function redrawCsrReview(chat: Chat, reviews: CsrReviewStore, id: string, log: Logger, now: () => Date = () => new Date()): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const v = await reviews.version(id);
    const review = await reviews.get(id);
    if (!review?.ts) return;
    const outcomes = await reviews.outcomes(id);
    try {
      await chat.update(review.channelId, review.ts, renderCsrReview(review, outcomes, now()));
    } catch (err) {
      log.warn({ review: id, err: (err as Error).message }, 'could not redraw the CSR message');
      return;
    }
    if ((await reviews.version(id)) === v) return;
  }
}

/** "csr-abc (kubelet client for m1, requested by system:bootstrap:abcdef, passes policy)" for the timeline. */
export function describeRow(r: CsrRow): string {
  const verdict = r.verdict.pass ? 'passes policy' : `FLAGGED: ${r.verdict.reasons.join('; ')}`;
  // For the timeline (mirrored to Slack): CN, SANs and requestor are the filer's text, made inert.
  return `${r.name} (${rowPurpose(r)}, requested by ${escapeMrkdwn(r.requestor.user || 'unknown')}, ${escapeMrkdwn(verdict)})`;
}
