import type { ClusterConfig } from '../config/schema.js';
import { TERMINAL, type Run } from '../runbook/types.js';
import type { StatusReport } from '../status/assess.js';
import * as m from './registry.js';

const seconds = (from: string | undefined, toMs: number) => {
  const t = from ? Date.parse(from) : NaN;
  return Number.isFinite(t) ? Math.max(0, (toMs - t) / 1000) : null;
};

/**
 * What one stored change of a run says for the metrics: a run that ended, a
 * step that ended, a gate that was decided. Called by the run store after each
 * write that took (src/runbook/store.ts), so every path that changes a run — a
 * click, a worker, the sweeper, `/etcd cancel` — is counted once, by the
 * process that made the change.
 */
export function observeRunChange(before: Run, after: Run, nowMs = Date.now()): void {
  if (!TERMINAL.includes(before.status) && TERMINAL.includes(after.status)) m.runsEnded.inc({ runbook: after.runbook, state: after.status });
  after.records.forEach((rec, i) => {
    const was = before.records[i]?.status;
    if (was === rec.status) return;
    if (rec.status === 'done' || rec.status === 'skipped' || rec.status === 'failed') {
      const took = seconds(rec.startedAt, rec.endedAt ? Date.parse(rec.endedAt) : nowMs);
      if (took !== null) m.stepSeconds.observe({ kind: after.steps[i]!.kind, outcome: rec.status }, took);
    }
  });
  // A gate decided: approved (its step now approved), or rejected (a stop by reject while it was open).
  const gate = before.gate;
  if (gate && before.records[gate.step]?.status === 'awaiting_approval') {
    const approved = after.records[gate.step]?.status === 'approved';
    const rejected = !before.stopRequest && after.stopRequest?.kind === 'reject';
    if (approved || rejected) {
      const waited = seconds(gate.openedAt, nowMs);
      if (waited !== null) m.approvalWaitSeconds.observe({ runbook: after.runbook, decision: approved ? 'approve' : 'reject' }, waited);
    }
  }
}

const seenMembers = new Map<string, Set<string>>();

/** The last status of a cluster, as gauges (a member no longer in the report loses its series). */
export function observeStatus(cluster: ClusterConfig, report: StatusReport): void {
  const c = { cluster: cluster.name };
  m.membersTotal.set(c, report.voters);
  m.membersUp.set(c, report.healthyVoters);
  m.quorum.set(c, report.verdict === 'HEALTHY' || report.verdict === 'DEGRADED' ? 1 : 0);
  m.leader.set(c, report.leaderHex ? 1 : 0);
  m.alarms.set(c, new Set(report.members.flatMap((r) => r.alarms)).size);
  m.statusTime.set(c, Math.floor(report.at.getTime() / 1000));
  m.dbQuotaBytes.set(c, cluster.etcd.quotaBytes);
  const now = new Set<string>();
  for (const row of report.members) {
    if (!row.status) continue;
    now.add(row.name);
    m.dbBytes.set({ cluster: cluster.name, member: row.name }, row.status.dbSize);
  }
  for (const gone of seenMembers.get(cluster.name) ?? []) if (!now.has(gone)) m.dbBytes.remove({ cluster: cluster.name, member: gone });
  seenMembers.set(cluster.name, now);
}

/** Runs not ended, as the run gauges read them at a scrape: a run's runbook and since when its current step runs. */
export async function activeRunsOf(store: { activeRunIds(): Promise<string[]>; get(id: string): Promise<Run | null> }) {
  const runs = await Promise.all((await store.activeRunIds()).map((id) => store.get(id)));
  return runs
    .filter((r): r is Run => !!r && !TERMINAL.includes(r.status))
    .map((r) => {
      const rec = r.records[r.current];
      return { runbook: r.runbook, runningSince: rec?.status === 'running' ? (rec.startedAt ?? null) : null };
    });
}
