import { describe, expect, it } from 'vitest';
import { quorumCannotAnswer, type EndpointProbe, type ProbedMember } from '../../src/etcd/probe.js';

const member = (n: number, learner = false): ProbedMember => ({ id: String(n), name: `m${n}`, peerURLs: [`https://10.0.0.${n}:2380`], clientURLs: [`https://10.0.0.${n}:2379`], isLearner: learner });
const ok = (n: number, members: ProbedMember[]): EndpointProbe => ({
  endpoint: `https://10.0.0.${n}:2379`,
  ok: true,
  tookMs: 5,
  members,
  status: { memberId: String(n), clusterId: '1', revision: 10, version: '3.4.23', dbSize: 1, dbSizeInUse: 1, leader: '2', raftIndex: 20, raftTerm: 2, raftAppliedIndex: 20, isLearner: false, errors: [] },
});
const refused = (n: number): EndpointProbe => ({ endpoint: `https://10.0.0.${n}:2379`, ok: false, tookMs: 3, error: { kind: 'refused', message: 'connection refused' } });

describe('quorumCannotAnswer: whether a call through raft (the alarm list) can only wait out its deadline', () => {
  const three = [member(1), member(2), member(3)];

  it('is true when two of three voters refuse, though the survivor still names the old leader', () => {
    expect(quorumCannotAnswer([ok(1, three), refused(2), refused(3)])).toBe(true);
  });

  it('is false when one of three voters is down: the other two still commit', () => {
    expect(quorumCannotAnswer([ok(1, three), ok(2, three), refused(3)])).toBe(false);
  });

  it('counts a voter whose endpoint was not asked as up, and a learner not at all', () => {
    // Only m1 is configured as an endpoint: m2 and m3 were not asked, so nothing says quorum is gone.
    expect(quorumCannotAnswer([ok(1, three)])).toBe(false);
    // m4 is a learner: its refusal does not count against the voters' quorum.
    expect(quorumCannotAnswer([ok(1, [...three, member(4, true)]), ok(2, three), refused(4)])).toBe(false);
  });

  it('is false when no member list came back (nothing known)', () => {
    expect(quorumCannotAnswer([refused(1), refused(2), refused(3)])).toBe(false);
  });
});
