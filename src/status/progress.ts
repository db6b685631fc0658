import type { ClusterConfig } from '../config/schema.js';
import { hexId, type EndpointErrorKind } from '../etcd/pool.js';
import type { EndpointProbe } from '../etcd/probe.js';
import type { MemberRow } from './assess.js';
import { hostOfUrl } from './members.js';

/** One configured endpoint while status is still asking: answered, failed, or still waited for. */
export type ProgressRow =
  | { name: string; endpoint: string; state: 'answered'; member: MemberRow; leaderHex: string | null }
  | { name: string; endpoint: string; state: 'failed'; error: { kind: EndpointErrorKind; message: string } }
  | { name: string; endpoint: string; state: 'waiting' };

/**
 * What `/etcd status` knows before it can give a verdict: each member's own answer,
 * as it gave it, and who is still being waited for. It carries no verdict on
 * purpose: one member's view (even "I am the leader") says nothing certain about
 * quorum until the others have answered or run out their deadline.
 */
export interface StatusProgress {
  cluster: string;
  startedAt: Date;
  deadlineMs: number;
  rows: ProgressRow[];
  /** Names of the members still asked, then "the alarm list" when only that is left. */
  waiting: string[];
  /** Why the verdict waits beyond the members' answers (an election), or null. */
  note: string | null;
}

/** Pure: the known part of a status from the endpoints that have settled so far (in any order). */
export function statusProgress(
  cluster: ClusterConfig,
  settled: EndpointProbe[],
  opts: { startedAt: Date; alarmsPending?: boolean; note?: string | null },
): StatusProgress {
  const byEndpoint = new Map(settled.map((e) => [e.endpoint, e]));
  const rows: ProgressRow[] = cluster.etcd.endpoints.map((endpoint) => {
    const configured = cluster.members.find((m) => m.host === hostOfUrl(endpoint))?.name ?? endpoint;
    const e = byEndpoint.get(endpoint);
    if (!e) return { name: configured, endpoint, state: 'waiting' };
    if (!e.ok) return { name: configured, endpoint, state: 'failed', error: e.error };
    const s = e.status;
    const self = e.members?.find((m) => m.id === s.memberId);
    const name = self?.name || configured;
    const member: MemberRow = {
      name,
      idHex: hexId(s.memberId),
      peerURLs: self?.peerURLs ?? [],
      clientURLs: self?.clientURLs ?? [endpoint],
      started: true,
      learner: s.isLearner,
      reachable: true,
      error: null,
      // Not starred: a member cut off from its peers may still believe it leads; the verdict decides.
      isLeader: false,
      status: s,
      alarms: [],
    };
    return { name, endpoint, state: 'answered', member, leaderHex: s.leader !== '0' ? hexId(s.leader) : null };
  });
  rows.sort((a, b) => a.name.localeCompare(b.name));
  const waiting = rows.filter((r) => r.state === 'waiting').map((r) => r.name);
  if (waiting.length === 0 && opts.alarmsPending) waiting.push('the alarm list');
  return { cluster: cluster.name, startedAt: opts.startedAt, deadlineMs: cluster.etcd.callTimeoutMs, rows, waiting, note: opts.note ?? null };
}
