import type { MemberRow } from './assess.js';

/** The host part of an etcd URL: https://10.0.0.3:2379 → 10.0.0.3. */
export function hostOfUrl(url: string): string {
  return url.replace(/^https?:\/\//, '').replace(/:\d+$/, '');
}

/** Finds a member by name, hex ID (as etcdctl prints it) or host address. */
export function findMember<T extends { name: string; idHex: string | null; peerURLs: string[]; clientURLs: string[] }>(members: T[], ref: string): T | undefined {
  const r = ref.toLowerCase();
  return (
    members.find((m) => m.name === r) ??
    members.find((m) => m.idHex === r) ??
    members.find((m) => [...m.peerURLs, ...m.clientURLs].some((u) => hostOfUrl(u) === r))
  );
}

/**
 * What removing `target` leaves of the voting members: etcd's rule is that the
 * healthy voters left must still be a quorum of the smaller cluster, and a
 * cluster of two or fewer voters is never shrunk. Preflight and the step use it alike.
 */
export function afterRemoval(members: MemberRow[], target: MemberRow): { ok: boolean; voters: number; healthyLeft: number; quorumAfter: number } {
  const voters = members.filter((m) => !m.learner);
  const healthyLeft = voters.filter((m) => m !== target && m.reachable && m.status && m.status.leader !== '0').length;
  const quorumAfter = Math.floor((voters.length - 1) / 2) + 1;
  const ok = target.learner || (voters.length > 2 && healthyLeft >= quorumAfter);
  return { ok, voters: voters.length, healthyLeft, quorumAfter };
}
