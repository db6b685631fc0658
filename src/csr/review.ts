import { createHash } from 'node:crypto';
import type { CsrVerdict } from '../kube/csr-policy.js';
import type { Csr } from '../kube/csrs.js';
import { escapeMrkdwn } from '../render/escape.js';

/**
 * A CSR as a reviewer sees it in Slack: who asked, for what, the decoded
 * request and the policy verdict. Plain data (it is kept in Redis with the
 * message it was drawn in), so the message can be redrawn after each decision.
 */
export interface CsrRow {
  name: string;
  uid: string;
  /** A short hash of spec.request: a CSR that asks for something else than what was shown is refused. */
  requestHash: string;
  createdAt?: string;
  requestor: { user: string; groups: string[] };
  signer: string;
  usages: string[];
  request:
    | { ok: true; cn?: string; o: string[]; dns: string[]; ips: string[]; other: string[]; key: string; signatureValid: boolean | null }
    | { ok: false; error: string };
  verdict: { kind: CsrVerdict['kind']; node?: string; pass: boolean; reasons: string[] };
}

/** What became of a row after the message was drawn. */
export interface CsrOutcome {
  state: 'approved' | 'denied' | 'decided-elsewhere' | 'gone' | 'changed';
  /** The Slack user who clicked or typed, when the outcome is a decision made here. */
  by?: string;
  at: string;
  /** One short line for the row (who decided elsewhere, what changed). */
  text?: string;
}

/** One drawn message of CSRs: which cluster, where it is, what it showed. */
export interface CsrReview {
  id: string; // cr-<8 hex>
  cluster: string;
  channelId: string;
  /** The message (set once Slack took it). */
  ts?: string;
  /** The thread the message is in (the incident's, for the watch's waves). */
  threadTs?: string;
  incidentId?: string;
  /** Who asked for it: a Slack user ID, or "bot" for the watch. */
  by: string;
  title: string;
  createdAt: string;
  rows: CsrRow[];
  /** Pending CSRs beyond those kept in `rows` (not shown, not approvable from this message). */
  more: string[];
}

/** What a CSR button carries: the message it is on, and the CSR as drawn (uid and request hash), or "all that pass". */
export type CsrClick = { reviewId: string; name: string; uid: string; hash: string } | { reviewId: string; all: true; count: number };

/** A decision asked for by a click on a CSR message, or typed (`/etcd csr approve <name…>`). */
export interface CsrDecideData {
  decision: 'approve' | 'deny';
  /** A click: which message and which CSR as drawn (the cluster is the message's). */
  click?: CsrClick;
  /** Typed: the cluster and the CSR names (each a valid Kubernetes name). */
  cluster?: string;
  names?: string[];
}

export const REVIEW_ID = /^cr-[0-9a-f]{8}$/;
/** A Kubernetes object name (DNS subdomain), as the API server validates it. */
export const KUBE_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function requestHash(request: string | undefined): string {
  return createHash('sha256').update(request ?? '').digest('hex').slice(0, 16);
}

export function csrRow(csr: Csr, verdict: CsrVerdict): CsrRow {
  const d = verdict.decoded;
  return {
    name: csr.metadata?.name ?? '',
    uid: csr.metadata?.uid ?? '',
    requestHash: requestHash(csr.spec?.request),
    createdAt: csr.metadata?.creationTimestamp ? new Date(csr.metadata.creationTimestamp).toISOString() : undefined,
    requestor: { user: csr.spec?.username ?? '', groups: csr.spec?.groups ?? [] },
    signer: csr.spec?.signerName ?? '',
    usages: csr.spec?.usages ?? [],
    request: d
      ? {
          ok: true,
          cn: d.subject.commonNames.length > 1 ? d.subject.commonNames.join(' + ') : d.subject.commonName,
          o: d.subject.organizations,
          dns: d.san.dns,
          ips: d.san.ips,
          other: [...d.san.emails.map((e) => `email ${e}`), ...d.san.uris.map((u) => `URI ${u}`), ...d.san.other],
          key: d.key.text,
          signatureValid: d.signatureValid,
        }
      : { ok: false, error: verdict.reasons.at(-1) ?? 'the request does not decode' },
    verdict: { kind: verdict.kind, node: verdict.node, pass: verdict.pass, reasons: verdict.reasons },
  };
}

/** "kubelet client for m2", "kubelet serving for m1", "not a kubelet CSR". */
export function rowPurpose(row: CsrRow): string {
  // The node name comes from the request's CN, which whoever filed the CSR chose: inert in mrkdwn.
  const node = row.verdict.node ? ` for ${escapeMrkdwn(row.verdict.node)}` : '';
  if (row.verdict.kind === 'kubelet-client') return `kubelet client${node}`;
  if (row.verdict.kind === 'kubelet-serving') return `kubelet serving${node}`;
  return 'not a kubelet CSR';
}

/** How many rows get the full review with buttons; the rest are one line each. */
export const DETAIL_MAX = 15;
/** One-line rows beyond the detailed ones; more than this are only counted and named. */
export const COMPACT_MAX = 120;

export interface Layout {
  /** Indexes into rows, in display order. */
  detailed: number[];
  compact: number[];
  hidden: number[];
}

/**
 * Which rows a message shows in full (with their own buttons), which as one
 * line, which only by name. Flagged CSRs come first: they are the ones that
 * need a person's eyes, and only their own button approves them. Pure and
 * deterministic: the worker uses it to know what "approve all shown" meant.
 */
export function layoutRows(rows: CsrRow[]): Layout {
  const order = [...rows.keys()].sort((a, b) => Number(rows[a]!.verdict.pass) - Number(rows[b]!.verdict.pass) || a - b);
  if (rows.length <= DETAIL_MAX) return { detailed: order, compact: [], hidden: [] };
  return {
    detailed: order.slice(0, DETAIL_MAX),
    compact: order.slice(DETAIL_MAX, DETAIL_MAX + COMPACT_MAX),
    hidden: order.slice(DETAIL_MAX + COMPACT_MAX),
  };
}

/** The rows "Approve all that pass" covers: shown (in full or as a line), passing policy, not decided yet. */
export function approvableRows(review: CsrReview, outcomes: Record<string, CsrOutcome>): CsrRow[] {
  const { detailed, compact } = layoutRows(review.rows);
  return [...detailed, ...compact].map((i) => review.rows[i]!).filter((r) => r.verdict.pass && !outcomes[r.name]);
}
