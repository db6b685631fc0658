import type { ClusterConfig } from '../config/schema.js';
import type { EtcdPool } from '../etcd/pool.js';
import { probeCluster } from '../etcd/probe.js';
import type { ObservedState } from '../runbook/types.js';
import { assessCluster, type MemberRow, type StatusReport } from '../status/assess.js';
import { statusProgress, type StatusProgress } from '../status/progress.js';

export interface ClusterView {
  report: StatusReport;
  state: ObservedState;
  /** A client URL of a member that answered and has a leader: where API calls go. */
  healthyEndpoint: string | null;
}

export interface ViewOptions {
  /**
   * Called with what is known before the view is complete: once at the start, when a member
   * answers or fails while others are still asked, and before each look again during an election.
   * Never called with the complete view (that is the returned report, with its verdict).
   */
  onProgress?: (p: StatusProgress) => void;
}

/** Asks every member (each with its deadline) and condenses what they said. */
export async function viewCluster(cluster: ClusterConfig, pool: EtcdPool, now: () => Date = () => new Date(), opts: ViewOptions = {}): Promise<ClusterView> {
  const startedAt = now();
  const onProgress = (p: StatusProgress) => {
    try {
      opts.onProgress?.(p);
    } catch {
      // Progress is for the reader's patience; a fault in showing it must not lose the answer.
    }
  };
  if (opts.onProgress) onProgress(statusProgress(cluster, [], { startedAt }));
  const first = await probeCluster(cluster, pool, undefined, opts.onProgress && ((p) => {
    const progress = statusProgress(cluster, p.settled, { startedAt, alarmsPending: p.alarmsPending });
    if (progress.waiting.length > 0) onProgress(progress);
  }));
  let report = assessCluster(cluster, first);
  let last = first;
  // Enough voters answer but none knows a leader: an election is running (the leader just died).
  // A decision taken now would read "no quorum"; look again for up to about two election timeouts.
  for (let i = 0; i < 6 && electing(report); i++) {
    if (opts.onProgress) onProgress(statusProgress(cluster, last.endpoints, { startedAt, note: electionNote(report) }));
    await new Promise((r) => setTimeout(r, 500));
    last = await probeCluster(cluster, pool);
    report = assessCluster(cluster, last);
  }
  const up = report.members.filter((m) => m.status && m.status.leader !== '0' && m.clientURLs.length > 0);
  const leader = up.find((m) => m.isLeader) ?? up[0];
  return {
    report,
    state: {
      members: report.members.map((m) => ({
        idHex: m.idHex ?? '?',
        name: m.started ? m.name : '',
        peerURLs: m.peerURLs,
        learner: m.learner,
        started: m.started,
        reachable: m.reachable,
      })),
      leaderHex: report.leaderHex,
      raftIndex: Math.max(0, ...report.members.map((m) => m.status?.raftIndex ?? 0)),
      revision: Math.max(0, ...report.members.map((m) => m.status?.revision ?? 0)),
      at: now().toISOString(),
    },
    healthyEndpoint: leader ? clientUrlOf(cluster, leader) : null,
  };
}

function electionNote(r: StatusReport): string {
  const answering = r.members.filter((m) => !m.learner && m.status).length;
  return `${answering} of ${r.voters} voting members answer but none knows a leader: an election is probably running. Looking again (for at most 3 s) before judging quorum.`;
}

function electing(r: StatusReport): boolean {
  const answering = r.members.filter((m) => !m.learner && m.status).length;
  return r.verdict === 'QUORUM_LOST' && answering >= r.quorum;
}

/** The configured endpoint for a member (the one the TLS setup expects), else its advertised URL. */
export function clientUrlOf(cluster: ClusterConfig, m: Pick<MemberRow, 'clientURLs'>): string {
  return m.clientURLs.find((u) => cluster.etcd.endpoints.includes(u)) ?? m.clientURLs[0]!;
}
