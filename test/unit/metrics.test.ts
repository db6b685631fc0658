import { describe, expect, it } from 'vitest';
import { memberRow, threeMasters } from '../support/fixtures.js';
import { activeRunsOf, observeRunChange, observeStatus } from '../../src/metrics/observe.js';
import { registry } from '../../src/metrics/registry.js';
import { newRun } from '../../src/runbook/new-run.js';
import { transition, type RunEvent } from '../../src/runbook/transition.js';
import type { ObservedState, Run, StepSpec } from '../../src/runbook/types.js';
import type { MemberRow, StatusReport } from '../../src/status/assess.js';

const { inventory } = threeMasters('{ roles: { approve: [UBOB], destroy: [UALICE] } }');
const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 100, revision: 50, at: '2026-11-23T03:00:00.000Z' };
const t0 = new Date('2026-11-23T03:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const step = (kind: StepSpec['kind'], destructive: boolean): StepSpec => ({ kind, title: kind, destructive, operation: kind, params: {} }) as StepSpec;
const fresh = (): Run =>
  newRun(inventory, { runId: 'r-0000abcd', runbook: 'replace', title: 'Replace m3', cluster: 'prod', target: 'm3', steps: [step('snapshot', false), step('member-remove', true)], plannedState: state, requestedBy: 'UALICE', channelId: 'CINC' }, t0);

/** Applies each event as the store does: the change is observed with the time it happened. */
function apply(run: Run, e: RunEvent, now: Date): Run {
  const out = transition(run, e, now);
  if ('refused' in out) throw new Error(out.refused);
  observeRunChange(run, out.run, now.getTime());
  return out.run;
}
const sample = async (series: string) => {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

describe('metrics of runs', () => {
  it('counts a run once when it ends, times its steps from start to end, and the wait for approval', async () => {
    const sum = (kind: string) => sample(`etcd_medic_step_seconds_sum{kind="${kind}",outcome="done"}`);
    const before = await Promise.all([sample('etcd_medic_runs_total{runbook="replace",state="done"}'), sum('snapshot'), sum('member-remove'), sample('etcd_medic_approval_wait_seconds_sum{runbook="replace",decision="approve"}')]);
    let run = fresh();
    run = apply(run, { kind: 'start-step', step: 0, token: 'A' }, at(0));
    run = apply(run, { kind: 'complete-step', step: 0, token: 'A', summary: 'ok' }, at(4));
    run = apply(run, { kind: 'open-gate', step: 1, state, ttlMs: 600_000 }, at(4));
    run = apply(run, { kind: 'approve', step: 1, hash: run.gate!.hash, by: 'UBOB' }, at(94));
    run = apply(run, { kind: 'start-step', step: 1, token: 'B' }, at(95));
    run = apply(run, { kind: 'complete-step', step: 1, token: 'B', summary: 'removed' }, at(97));
    expect(run.status).toBe('done');
    // The same ended run written again (a retried write) is not a second run.
    observeRunChange(run, structuredClone(run), at(98).getTime());
    const after = await Promise.all([sample('etcd_medic_runs_total{runbook="replace",state="done"}'), sum('snapshot'), sum('member-remove'), sample('etcd_medic_approval_wait_seconds_sum{runbook="replace",decision="approve"}')]);
    expect(after.map((n, i) => n - before[i]!)).toEqual([1, 4, 2, 90]);
  });

  it('counts a rejection as a decision on the open gate, and the run as rejected when it ends', async () => {
    const series = ['etcd_medic_approval_wait_seconds_count{runbook="replace",decision="reject"}', 'etcd_medic_runs_total{runbook="replace",state="rejected"}'];
    const before = await Promise.all(series.map(sample));
    let run = fresh();
    run = apply(run, { kind: 'start-step', step: 0, token: 'A' }, at(0));
    run = apply(run, { kind: 'complete-step', step: 0, token: 'A', summary: 'ok' }, at(1));
    run = apply(run, { kind: 'open-gate', step: 1, state, ttlMs: 600_000 }, at(1));
    run = apply(run, { kind: 'stop', how: 'reject', by: 'UBOB' }, at(30));
    run = apply(run, { kind: 'end-stopped' }, at(31));
    expect(run.status).toBe('rejected');
    expect((await Promise.all(series.map(sample))).map((n, i) => n - before[i]!)).toEqual([1, 1]);
  });

  it('reads the unfinished runs for the gauges: a running step since its start, a gate waiting as not running', async () => {
    const running = (transition(fresh(), { kind: 'start-step', step: 0, token: 'A' }, at(0)) as { run: Run }).run;
    const ended = { ...fresh(), runId: 'r-ended', status: 'done' as const };
    const runs: Record<string, Run> = { a: running, b: fresh(), c: ended };
    const seen = await activeRunsOf({ activeRunIds: async () => ['a', 'b', 'c', 'gone'], get: async (id) => runs[id] ?? null });
    expect(seen).toEqual([
      { runbook: 'replace', runningSince: at(0).toISOString() },
      { runbook: 'replace', runningSince: null },
    ]);
  });
});

describe('metrics of the last status', () => {
  const cluster = inventory.clusters[0]!;
  const report = (verdict: StatusReport['verdict'], members: MemberRow[], leaderHex: string | null): StatusReport => ({
    cluster: cluster.name, at: at(0), tookMs: 10, verdict, summary: '', next: '', voters: 3, quorum: 2,
    healthyVoters: members.filter((m) => m.reachable).length, tolerance: 0, clusterIdHex: '1', leaderHex, members, warnings: [],
  });
  const g = (name: string, labels = `cluster="${cluster.name}"`) => sample(`${name}{${labels}}`);

  it('sets the cluster gauges and drops the series of a member no longer listed', async () => {
    const ok = { raftIndex: 10, revision: 5, leader: '1' };
    observeStatus(cluster, report('HEALTHY', [memberRow(1, ok, { alarms: ['NOSPACE'] }), memberRow(2, ok, { alarms: ['NOSPACE'] }), memberRow(3, ok)], 'a1'));
    expect(await Promise.all(['etcd_medic_cluster_members_up', 'etcd_medic_cluster_quorum', 'etcd_medic_cluster_leader', 'etcd_medic_cluster_alarms'].map((n) => g(n)))).toEqual([3, 1, 1, 1]);
    expect(await g('etcd_medic_member_db_size_bytes', `cluster="${cluster.name}",member="m3"`)).toBe(1);

    // m3 no longer answers and m2 has left the list: their DB size is no longer claimed.
    observeStatus(cluster, report('QUORUM_LOST', [memberRow(1, ok), memberRow(3, null)], null));
    expect(await Promise.all(['etcd_medic_cluster_members_up', 'etcd_medic_cluster_quorum', 'etcd_medic_cluster_leader', 'etcd_medic_cluster_alarms'].map((n) => g(n)))).toEqual([1, 0, 0, 0]);
    const text = await registry.metrics();
    expect(text).toContain(`etcd_medic_member_db_size_bytes{cluster="${cluster.name}",member="m1"} 1`);
    expect(text).not.toMatch(new RegExp(`etcd_medic_member_db_size_bytes\\{cluster="${cluster.name}",member="m[23]"\\}`));
    expect(await g('etcd_medic_cluster_db_quota_bytes')).toBe(cluster.etcd.quotaBytes);
  });
});
