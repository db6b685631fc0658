import { describe, expect, it } from 'vitest';
import type { MemberRow } from '../../src/status/assess.js';
import type { EndpointStatus } from '../../src/etcd/probe.js';
import { caughtUpLook } from '../../src/worker/steps/caught-up.js';

const status = (raftIndex: number): EndpointStatus => ({ memberId: '1', clusterId: '9', revision: 1, version: '3.4.23', dbSize: 1, dbSizeInUse: 1, leader: '1', raftIndex, raftTerm: 2, raftAppliedIndex: raftIndex, isLearner: false, errors: [] });
const row = (name: string, o: Partial<MemberRow>): MemberRow => ({
  name,
  idHex: `${name}1d`,
  peerURLs: [`https://${name}:2380`],
  clientURLs: [`https://${name}:2379`],
  started: true,
  learner: false,
  reachable: true,
  error: null,
  isLeader: false,
  status: null,
  alarms: [],
  ...o,
});
const LAG = 100;

/** The wait for a grown-back member to catch up, one look at a time. */
describe('whether a new member has caught up', () => {
  it('is not caught up when the leader did not answer the look, however far behind the member is: its lag is not known', () => {
    // The fault: the look came from the learner; the leader's own status missed its deadline (load), so its index is unknown.
    const members = [row('m1', { isLeader: true, reachable: false, error: { kind: 'timeout', message: 'deadline exceeded' } }), row('m2', { learner: true, status: status(3) })];
    const look = caughtUpLook(members, 'https://m2:2380', null, LAG);
    expect(look).toEqual({ caughtUp: false, last: 'started at raft index 3; the leader m1 did not answer, so its lag is not known' });
    // Nor when no member knows a leader (an election under way).
    expect(caughtUpLook([row('m1', { status: status(5000) }), row('m2', { learner: true, status: status(3) })], 'https://m2:2380', null, LAG).caughtUp).toBe(false);
  });

  it('compares with the leader\'s raft index: far behind waits, within the limit is caught up', () => {
    const leader = row('m1', { isLeader: true, status: status(5000) });
    expect(caughtUpLook([leader, row('m2', { learner: true, status: status(3) })], 'https://m2:2380', null, LAG)).toEqual({ caughtUp: false, last: 'started, 4997 entries behind' });
    const look = caughtUpLook([leader, row('m2', { learner: true, status: status(4950) })], 'https://m2:2380', null, LAG);
    expect(look).toEqual({ caughtUp: true, summary: 'm2 (m21d) is started at raft index 4950, 50 behind the leader m1 (5000)' });
  });

  it('takes the member\'s index from its own answer only when it is the same member, and never calls a member not started caught up', () => {
    const leader = row('m1', { isLeader: true, status: status(5000) });
    const silent = row('m2', { learner: true, reachable: false, error: { kind: 'timeout', message: 'deadline exceeded' } });
    expect(caughtUpLook([leader, silent], 'https://m2:2380', { idHex: 'm21d', raftIndex: 4990 }, LAG).caughtUp).toBe(true);
    expect(caughtUpLook([leader, silent], 'https://m2:2380', { idHex: 'ffff', raftIndex: 4990 }, LAG).caughtUp).toBe(false);
    expect(caughtUpLook([leader, row('m2', { learner: true, started: false, name: '(not started)' })], 'https://m2:2380', null, LAG)).toEqual({ caughtUp: false, last: 'not started yet' });
    expect(() => caughtUpLook([leader], 'https://m9:2380', null, LAG)).toThrow('no member with peer URL https://m9:2380 in the member list any more');
  });
});
