/**
 * A runbook run as data: the plan (ordered steps, each an exact operation), the
 * cluster state it was planned against, and what has happened to each step.
 * It is stored in Redis and is the single source of truth for bot and workers.
 */

import type { StepSpec } from '../steps/types.js';

/** A step of a plan: one kind of src/steps, with that kind's params. */
export type { StepKind, StepOf, StepSpec } from '../steps/types.js';

/** What the bot saw of the cluster; a gate's approval is bound to it. */
export interface ObservedMember {
  idHex: string;
  name: string;
  peerURLs: string[];
  learner: boolean;
  started: boolean;
  reachable: boolean;
}

export interface ObservedState {
  members: ObservedMember[];
  leaderHex: string | null;
  raftIndex: number;
  revision: number;
  at: string;
}

export type StepStatus = 'pending' | 'awaiting_approval' | 'approved' | 'running' | 'done' | 'skipped' | 'failed' | 'not_run';

export interface StepRecord {
  status: StepStatus;
  startedAt?: string;
  endedAt?: string;
  summary?: string;
  output?: string;
  error?: string;
  /** The step did its work but found something still wrong outside etcd: the run ends DONE with it as a caveat. */
  caveat?: string;
  approvedBy?: string;
  approvedAt?: string;
  /** HMAC of the approval (src/approvals/sign.ts), checked right before the step runs. */
  approvalSig?: string;
  attempts?: number;
}

export interface Gate {
  step: number;
  /** sha256 of the run's plan hash, the step, and the state observed when the gate opened. */
  hash: string;
  state: ObservedState;
  openedAt: string;
  expiresAt: string;
  /** How many times this step's gate was opened (re-opened after expiry or a changed state). */
  round: number;
}

export type RunStatus = 'running' | 'awaiting_approval' | 'done' | 'failed' | 'cancelled' | 'rejected';

export const TERMINAL: readonly RunStatus[] = ['done', 'failed', 'cancelled', 'rejected'];

export interface Run {
  version: number;
  runId: string;
  runbook: 'replace' | 'restore-quorum' | 'restore' | 'drift-fix' | 'kubelets-renew' | 'defrag';
  /** "Replace m3 in prod", "Restore quorum of prod": the plan message's header. */
  title: string;
  /** Why this plan (the path taken and why, what it costs in data), shown above the steps. */
  rationale?: string;
  cluster: string;
  target: string;
  force: boolean;
  requestedBy: string;
  channelId: string;
  /** The incident this run belongs to, fixed at the start: every entry of the run goes to its timeline, even after it is closed. */
  incidentId?: string;
  messageTs?: string;
  createdAt: string;
  status: RunStatus;
  /** Index of the step to run next (steps.length once all ran). */
  current: number;
  steps: StepSpec[];
  records: StepRecord[];
  plannedState: ObservedState;
  planHash: string;
  /**
   * HMAC of the plan hash (src/approvals/sign.ts), made by the worker that stored the run: the
   * steps, requester and incident cannot be rewritten in Redis, plan hash and all, unseen.
   */
  planSig?: string;
  /** Who may approve, as shown in the plan. */
  approvers: string[];
  gate?: Gate;
  /**
   * Who executes the current step: the token of the run lease taken for this attempt.
   * Only the holder of this token may record the step's result (see transition.ts, store.ts).
   */
  attempt?: { step: number; token: string; at: string };
  /** Set by a click or `/etcd cancel`; the worker ends the run at the next step boundary. */
  stopRequest?: { kind: 'cancel' | 'reject'; by: string; at: string };
  ended?: { at: string; reason: string; /** Every step done, but not all is well: "etcd healthy, Kubernetes not yet: …". */ caveat?: string };
}

/**
 * A command a step's outcome suggests next, offered as a button in the run's
 * thread; its click runs exactly what typing `/etcd <command> <args…>` runs,
 * as the person who clicks.
 */
export interface CommandOffer {
  command: string;
  args: string[];
  label: string;
}
