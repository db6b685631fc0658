import type { MemberRow } from '../../status/assess.js';

/** The new member's raft index as it told the step's own watch of it (its member ID, hex, beside it). */
export interface OwnLook {
  idHex: string;
  raftIndex: number;
}

export type CaughtUpLook = { caughtUp: true; summary: string } | { caughtUp: false; last: string };

/**
 * Whether the member with `peerUrl` has caught up, from one look at the
 * cluster: started, its raft index known (from the look, or from its own
 * answer to the step's watch when the look missed it) and within `lagLimit`
 * entries of the leader's. The leader's raft index must be known too: a look
 * whose leader did not answer (a deadline under load, an election) says
 * nothing about the lag, and counting that index as 0 would call any member
 * caught up.
 */
export function caughtUpLook(members: MemberRow[], peerUrl: string, own: OwnLook | null, lagLimit: number): CaughtUpLook {
  const m = members.find((x) => x.peerURLs.includes(peerUrl));
  if (!m) throw new Error(`no member with peer URL ${peerUrl} in the member list any more`);
  const raftIndex = m.status?.raftIndex ?? (own && m.idHex && own.idHex === m.idHex ? own.raftIndex : null);
  if (!m.started || raftIndex === null) return { caughtUp: false, last: m.started ? `started but not answering (${m.error?.message})` : 'not started yet' };
  const leader = members.find((x) => x.isLeader && x.status);
  if (!leader) {
    const said = members.find((x) => x.isLeader);
    return { caughtUp: false, last: `started at raft index ${raftIndex}; ${said ? `the leader ${said.name} did not answer` : 'no leader known'}, so its lag is not known` };
  }
  const lag = leader.status!.raftIndex - raftIndex;
  if (lag <= lagLimit) return { caughtUp: true, summary: `${m.name} (${m.idHex}) is started at raft index ${raftIndex}, ${Math.max(0, lag)} behind the leader ${leader.name} (${leader.status!.raftIndex})` };
  return { caughtUp: false, last: `started, ${lag} entries behind` };
}
