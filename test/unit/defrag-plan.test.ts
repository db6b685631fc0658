import { describe, expect, it } from 'vitest';
import { memberRow, threeMasters } from '../support/fixtures.js';
import { stepOf } from '../support/steps.js';
import { renderRun } from '../../src/render/run-message.js';
import { blockLimitViolations } from '../../src/render/block-limits.js';
import { planDefrag } from '../../src/runbook/defrag-plan.js';
import type { ObservedState } from '../../src/runbook/types.js';
import type { MemberRow, StatusReport } from '../../src/status/assess.js';
import { defragmentedSincePlan, leaderTarget, notReadyForDefrag } from '../../src/worker/steps/defrag-steps.js';
import type { ClusterView } from '../../src/worker/cluster-view.js';

const { inventory, cluster } = threeMasters('{ roles: { approve: [UBOB], destroy: [UALICE] } }');
const MB = 1024 * 1024;

// Member `leader` leads; every member answers with an 8 MB database, 1 MB of it in use, NOSPACE raised on m1.
const row = (i: number, leader: number, over: Partial<MemberRow> = {}): MemberRow => {
  const r = memberRow(i, { raftIndex: 100, revision: 50, leader: String(leader) }, { isLeader: i === leader, alarms: i === 1 ? ['NOSPACE'] : [], ...over });
  return { ...r, status: r.status && { ...r.status, dbSize: 8 * MB, dbSizeInUse: MB } };
};
const report = (members: MemberRow[], verdict: StatusReport['verdict'] = 'DEGRADED'): StatusReport => ({
  cluster: 'prod', at: new Date(), tookMs: 1, verdict, summary: 'summary', next: '', voters: members.length, quorum: 2,
  healthyVoters: members.filter((m) => m.status).length, tolerance: 0, clusterIdHex: '1', leaderHex: members.find((m) => m.isLeader)?.idHex ?? null, members, warnings: [],
});
const state: ObservedState = { members: [], leaderHex: 'a2', raftIndex: 100, revision: 4242, at: '2026-11-23T03:00:00.000Z' };
const req = { runId: 'r-0000abcd', requestedBy: 'UALICE', channelId: 'CINC' };
const now = new Date('2026-11-23T03:00:00Z');
const plan = (members: MemberRow[], verdict?: StatusReport['verdict']) => planDefrag(inventory, cluster, report(members, verdict), state, req, now);

describe('planDefrag', () => {
  it('compacts (the one approved step), then defragments the followers by name and the leader last, then disarms and checks writes', () => {
    const out = plan([row(1, 2), row(2, 2), row(3, 2)]);
    if (!out.ok) throw new Error(out.reason);
    const { run } = out;
    expect(run.runbook).toBe('defrag');
    expect(run.title).toBe('Compact and defragment prod');
    expect(run.steps.map((s) => [s.kind, s.destructive])).toEqual([
      ['compact', true],
      ['defrag-member', false],
      ['defrag-member', false],
      ['defrag-member', false],
      ['alarm-disarm', false],
      ['write-check', false],
    ]);
    expect(stepOf(run.steps[0], 'compact').params).toEqual({ revision: 4242, via: 'm2' });
    expect(run.steps[0]!.operation).toContain('kv.compact({ revision: 4242, physical: true }) through m2 (https://10.0.0.2:2379)');
    const defrags = run.steps.slice(1, 4).map((s) => stepOf(s, 'defrag-member').params);
    expect(defrags.map((p) => [p.name, p.role, p.before, p.after])).toEqual([
      ['m1', 'follower', [], ['m3', 'm2']],
      ['m3', 'follower', ['m1'], ['m2']],
      ['m2', 'leader', ['m1', 'm3'], []],
    ]);
    expect(defrags.map((p) => p.url)).toEqual(['https://10.0.0.1:2379', 'https://10.0.0.3:2379', 'https://10.0.0.2:2379']);
    expect(defrags.map((p) => p.dbSize)).toEqual([8 * MB, 8 * MB, 8 * MB]);
    expect(defrags.every((p) => p.timeoutSeconds === cluster.etcd.defragTimeoutSeconds)).toBe(true);
    expect(run.steps[3]!.title).toBe('Defragment m2 (the leader, last)');
    expect(run.steps[1]!.operation).toContain('maintenance.defragment() on m1 (https://10.0.0.1:2379) alone, deadline 300 s');
    expect(run.steps[4]!.operation).toContain('(now on m1)');
    expect(stepOf(run.steps[4], 'alarm-disarm').params).toEqual({ quotaBytes: cluster.etcd.quotaBytes });
    expect(stepOf(run.steps[5], 'write-check').params).toEqual({ key: '/etcd-medic/write-check/r-0000abcd', voters: 3 });
    expect(run.rationale).toContain('NOSPACE is raised');
    expect(run.rationale).toContain('m2 (the leader) last');
    // Approvers are the configured ones; the requester cannot approve (the engine's rule, shown in the message).
    expect(run.approvers).toEqual(['UBOB']);
    expect(blockLimitViolations(renderRun(run).blocks)).toEqual([]);
  });

  it('with no alarm raised (a database near its quota) plans the same steps and says so', () => {
    const out = plan([row(1, 1, { alarms: [] }), row(2, 1), row(3, 1)], 'HEALTHY');
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.slice(1, 4).map((s) => stepOf(s, 'defrag-member').params.name)).toEqual(['m2', 'm3', 'm1']);
    expect(out.run.rationale).toContain('No alarm is raised');
    expect(out.run.steps[4]!.operation).toContain('(none now;');
  });

  it('refuses without quorum, with a member down or a learner, without a leader, and with a CORRUPT alarm: each with what to do', () => {
    const lost = plan([row(1, 1), memberRow(2, null), memberRow(3, null)], 'QUORUM_LOST');
    expect(lost).toEqual({ ok: false, reason: expect.stringContaining('`/etcd restore-quorum prod` first') });
    const down = plan([row(1, 1), row(2, 1), memberRow(3, null)]);
    expect(down.ok).toBe(false);
    expect(!down.ok && down.reason).toContain('m3 (a3) does not answer');
    expect(!down.ok && down.reason).toContain('`/etcd replace m3 prod` first, then `/etcd defrag prod`');
    const learner = plan([row(1, 1), row(2, 1), row(3, 1, { learner: true })]);
    expect(!learner.ok && learner.reason).toContain('m3 is a learner');
    const noLeader = plan([row(1, 0), row(2, 0), row(3, 0)]);
    expect(!noLeader.ok && noLeader.reason).toContain('do not agree on a leader');
    const corrupt = plan([row(1, 1), row(2, 1, { alarms: ['CORRUPT'] }), row(3, 1)]);
    expect(!corrupt.ok && corrupt.reason).toContain('alarm CORRUPT is raised');
  });

  it('a member that accepts connections but answers nothing (as one still being defragmented does) is waited for, not offered for replacement', () => {
    // The fault: m2's defragment of a run that hit its deadline still runs; etcd answers nothing there until it ends.
    const silent = memberRow(2, null, { reachable: false, error: { kind: 'timeout', message: 'DEADLINE_EXCEEDED' } });
    const out = plan([row(1, 1), silent, row(3, 1)]);
    expect(out.ok).toBe(false);
    const reason = !out.ok ? out.reason : '';
    expect(reason).toContain('m2 (a2) accepts connections but answers nothing within the deadline');
    expect(reason).toContain('defragment is still running');
    expect(reason).toContain('`/etcd defrag prod` again');
    // Replacing it is the last resort, named only for a member that stays silent with no defragment running.
    expect(reason.indexOf('/etcd replace')).toBeGreaterThan(reason.indexOf('If it stays silent'));
    // A member whose port refuses is down, and is still sent to replace.
    const down = plan([row(1, 1), memberRow(2, null), row(3, 1)]);
    expect(!down.ok && down.reason).toMatch(/^m2 \(a2\) does not answer\..*`\/etcd replace m2 prod` first/);
  });
});

describe('the defragment step looks before it acts', () => {
  it('takes a database smaller than when planned as defragmented (only a defragment shrinks the file), not one as big or bigger', () => {
    expect(defragmentedSincePlan({ dbSize: 520 * 1024 }, 7 * MB)).toBe(true);
    expect(defragmentedSincePlan({ dbSize: 7 * MB }, 7 * MB)).toBe(false);
    expect(defragmentedSincePlan({ dbSize: 8 * MB }, 7 * MB)).toBe(false);
  });

  it('hands leadership to a member this run did already, else to any other voter that answers', () => {
    const members = [row(1, 2), row(2, 2), row(3, 2)];
    expect(leaderTarget(members, ['m3'])?.name).toBe('m3');
    expect(leaderTarget(members, [])?.name).toBe('m1');
    expect(leaderTarget([row(1, 2, { reachable: false }), row(2, 2), row(3, 2, { learner: true })], [])).toBeNull();
  });

  it('defragments only with every member answering, one leader and no learner; NOSPACE does not stop it', () => {
    const view = (members: MemberRow[], verdict?: StatusReport['verdict']) => ({ report: report(members, verdict), state, healthyEndpoint: null }) as ClusterView;
    expect(notReadyForDefrag(view([row(1, 1), row(2, 1), row(3, 1)]))).toBeNull();
    expect(notReadyForDefrag(view([row(1, 1), row(2, 1), memberRow(3, null)]))).toContain('m3 (a3) does not answer');
    expect(notReadyForDefrag(view([row(1, 1), row(2, 1), row(3, 3)]))).toContain('do not agree on one leader');
    expect(notReadyForDefrag(view([row(1, 1), memberRow(2, null), memberRow(3, null)], 'QUORUM_LOST'))).toContain('no quorum');
  });

  it('stops between two defragments when etcd raised CORRUPT after the plan (the plan refuses a corrupt member; so does every later step)', () => {
    const view = (members: MemberRow[]) => ({ report: report(members), state, healthyEndpoint: null }) as ClusterView;
    // NOSPACE on m1 is what the run repairs: not a reason to stop.
    expect(notReadyForDefrag(view([row(1, 1), row(2, 1), row(3, 1)]))).toBeNull();
    // The fault: etcd's corruption check raised CORRUPT on m3 mid-run.
    const problem = notReadyForDefrag(view([row(1, 1), row(2, 1), row(3, 1, { alarms: ['CORRUPT'] })]));
    expect(problem).toContain('alarm CORRUPT on m3 is raised: a corrupt member is not defragmented');
    expect(problem).toContain('`/etcd replace`');
  });
});
