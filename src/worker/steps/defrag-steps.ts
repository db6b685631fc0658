import type { Etcd3 } from 'etcd3';
import { oneLine } from '../../errors.js';
import { listAlarms } from '../../etcd/alarms.js';
import { readMemberQuota } from '../../etcd/quota.js';
import type { StepResult } from '../../runbook/engine.js';
import type { StepOf } from '../../runbook/types.js';
import { formatBytes, type MemberRow } from '../../status/assess.js';
import { clientUrlOf, viewCluster, type ClusterView } from '../cluster-view.js';
import type { EtcdStepContext } from './etcd-steps.js';

/**
 * The steps of `/etcd defrag` (NOSPACE, or a database near its quota): compact,
 * defragment one member at a time, disarm the alarm, check writes. Each looks
 * at the cluster before it acts, so a worker that dies in the middle and is
 * retried does nothing twice.
 */

/** The etcd steps' context, with the run's stop request and the lease loss: a step that blocks a member must not start once either fired. */
export type DefragStepContext = EtcdStepContext & { stop?: AbortSignal; leaseLost?: AbortSignal };

/** How long the checks between two defragments wait for the cluster to be whole again. */
const READY_WAIT_MS = 60_000;

/**
 * Why the cluster is not ready for one member to be blocked by a defragment (null: it is):
 * every member in the list started and answering, one leader they agree on, no learner, no
 * alarm but NOSPACE (a member found CORRUPT mid-run is not defragmented, as the plan refuses it).
 * The NOSPACE alarm is what this runbook repairs, so it does not count here. A member still
 * being defragmented (by a caller that gave up or died) answers nothing, not even its status,
 * so it shows here as not answering: no second member is blocked meanwhile.
 */
export function notReadyForDefrag(view: ClusterView): string | null {
  const r = view.report;
  if (r.verdict === 'QUORUM_LOST' || r.verdict === 'UNREACHABLE') return `no quorum: ${r.summary}`;
  const down = r.members.filter((m) => !m.started || !m.status);
  if (down.length) return `${down.map((m) => `${m.name} (${m.idHex}) ${m.started ? `does not answer: ${m.error?.message ?? 'no status'}` : 'was added but never started'}`).join('; ')}`;
  const learners = r.members.filter((m) => m.learner);
  if (learners.length) return `${learners.map((m) => m.name).join(', ')} ${learners.length === 1 ? 'is a learner' : 'are learners'}: a membership change is under way`;
  const leaders = new Set(r.members.map((m) => m.status!.leader));
  if (leaders.size !== 1 || leaders.has('0')) return 'the members do not agree on one leader (an election may be running)';
  const other = r.members.flatMap((m) => m.alarms.filter((a) => a !== 'NOSPACE').map((a) => `${a} on ${m.name}`));
  if (other.length) return `alarm ${other.join(', ')} is raised: a corrupt member is not defragmented. Look at it first (\`/etcd status ${r.cluster}\`; a CORRUPT member is replaced with \`/etcd replace\`)`;
  return null;
}

/** Throws when this worker may no longer act on the step: the run was asked to stop, or its lease went to another worker. */
function mayAct(ctx: DefragStepContext, what: string): void {
  if (ctx.leaseLost?.aborted) throw new Error(`this worker lost the run lease before ${what}, so it did not (another worker may run the step now): nothing was done by it`);
  if (ctx.stop?.aborted) throw new Error(`the run was asked to stop before ${what}: not done`);
}

/** Waits, bounded, until the cluster is ready for (or back from) a defragment; the view it saw then. */
async function waitReady(ctx: DefragStepContext, when: string, ms = READY_WAIT_MS): Promise<ClusterView> {
  const deadline = Date.now() + ms;
  for (;;) {
    const view = await viewCluster(ctx.cluster, ctx.pool);
    const problem = notReadyForDefrag(view);
    if (!problem) return view;
    if (ctx.stop?.aborted) throw new Error(`the run was asked to stop while waiting for the cluster ${when} (${problem}). Nothing more was defragmented`);
    if (Date.now() + 250 > deadline) throw new Error(`the cluster was not healthy ${when} within ${Math.round(ms / 1000)} s: ${problem}. Nothing more was defragmented`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const compactedError = (e: Error) => /required revision has been compacted/i.test(e.message);

/**
 * Whether the keyspace is compacted to `revision` or later: a read at the revision
 * just before it is refused as compacted exactly then.
 */
async function compactedTo(client: Etcd3, revision: number): Promise<boolean> {
  if (revision <= 1) return true;
  try {
    await client.kv.range({ key: Buffer.from([0]), revision: revision - 1, limit: 1 });
    return false;
  } catch (err) {
    if (compactedError(err as Error)) return true;
    throw err;
  }
}

const dbLine = (m: MemberRow) => `${m.name} ${formatBytes(m.status!.dbSize)} (${formatBytes(m.status!.dbSizeInUse)} in use)`;

export async function compact(ctx: DefragStepContext, step: StepOf<'compact'>): Promise<StepResult> {
  const revision = Number(step.params.revision);
  const view = await viewCluster(ctx.cluster, ctx.pool);
  if (!view.healthyEndpoint) throw new Error(`no member with a leader to send the compaction to: ${view.report.summary}`);
  const client = ctx.pool.client(ctx.cluster, view.healthyEndpoint);
  const sizes = view.report.members.filter((m) => m.status).map(dbLine).join(', ');
  if (await compactedTo(client, revision)) return { skipped: true, summary: `the keyspace is already compacted to revision ${revision} or later: not compacted again (${sizes})` };
  mayAct(ctx, `compacting to revision ${revision}`);
  try {
    // physical: the answer waits until the compacted entries are out of the database, so the defragments that follow give the pages back.
    await client.kv.compact({ revision, physical: true }, { deadline: Date.now() + ctx.cluster.etcd.defragTimeoutSeconds * 1000 });
  } catch (err) {
    // A try whose answer was lost (a worker that died, a deadline) may have compacted already.
    if (compactedError(err as Error)) return { skipped: true, summary: `the keyspace was compacted to revision ${revision} or later meanwhile: not compacted again` };
    throw err;
  }
  return { summary: `compacted to revision ${revision}: the history before it is gone, its pages free for the defragments (before: ${sizes})` };
}

/**
 * Whether a member was defragmented since the plan: bbolt's file never shrinks but by a
 * defragment, so a database smaller than when planned has been through one. Asked only when the
 * step is resumed (its first try may have done it): a first try always defragments, since a
 * defragment made by hand before the compaction would leave the compacted pages in the file.
 */
export function defragmentedSincePlan(now: { dbSize: number }, plannedDbSize: number): boolean {
  return now.dbSize < plannedDbSize;
}

/** The member to hand leadership to before the leader is defragmented while others still wait: one this run already did, else any other voter. */
export function leaderTarget(members: Pick<MemberRow, 'name' | 'idHex' | 'learner' | 'reachable' | 'isLeader'>[], before: string[]): Pick<MemberRow, 'name' | 'idHex'> | null {
  const others = members.filter((m) => !m.isLeader && !m.learner && m.reachable && m.idHex);
  return before.map((n) => others.find((m) => m.name === n)).find(Boolean) ?? others[0] ?? null;
}

export async function defragMember(ctx: DefragStepContext, step: StepOf<'defrag-member'>, attempt: number): Promise<StepResult> {
  const p = step.params;
  // Resumed: the earlier try's defragment may still run in etcd (it goes on after its caller died), and the member
  // answers nothing until it ends: wait for it as long as a defragment may take, not a minute, before giving up on the run.
  let view = await waitReady(ctx, `before defragmenting ${p.name}`, attempt > 1 ? Math.max(READY_WAIT_MS, p.timeoutSeconds * 1000) : READY_WAIT_MS);
  let m = view.report.members.find((x) => x.idHex === p.idHex);
  if (!m) throw new Error(`${p.name} (${p.idHex}) is no longer in the member list: the plan does not fit the cluster any more; plan again`);
  // Resumed after its worker stopped: the first try may have done it. A member is defragmented once per run.
  if (attempt > 1 && defragmentedSincePlan(m.status!, p.dbSize)) {
    return { skipped: true, summary: `${p.name} was defragmented by this step's earlier try (${formatBytes(p.dbSize)} when planned, ${dbLine(m)} now): not defragmented again` };
  }
  let moved = '';
  if (m.isLeader && p.after.length > 0) {
    // Leader last: a leader blocked by a defragment stalls every write; the members after it are not done yet.
    const target = leaderTarget(view.report.members, p.before);
    if (!target) throw new Error(`${p.name} leads and no other voter answers to take over; nothing was defragmented`);
    mayAct(ctx, `moving the leadership from ${p.name} to ${target.name}`);
    await ctx.pool.client(ctx.cluster, clientUrlOf(ctx.cluster, m)).maintenance.moveLeader({ targetID: BigInt(`0x${target.idHex}`).toString() });
    const deadline = Date.now() + 15_000;
    for (;;) {
      view = await waitReady(ctx, `after moving the leadership to ${target.name}`);
      if (view.report.leaderHex === target.idHex) break;
      if (Date.now() > deadline) throw new Error(`leadership did not move from ${p.name} to ${target.name} within 15 s; nothing was defragmented`);
      await new Promise((r) => setTimeout(r, 200));
    }
    m = view.report.members.find((x) => x.idHex === p.idHex)!;
    moved = ` (it led; leadership moved to ${target.name} first)`;
  }
  const url = clientUrlOf(ctx.cluster, m);
  const before = dbLine(m);
  mayAct(ctx, `defragmenting ${p.name}`);
  const t0 = Date.now();
  try {
    // Its own deadline: a large database blocks the member for longer than any other call may take.
    await ctx.pool.client(ctx.cluster, url).maintenance.defragment({ deadline: Date.now() + p.timeoutSeconds * 1000 });
  } catch (err) {
    const e = err as Error;
    if (/deadline|timed? ?out/i.test(e.message)) {
      throw new Error(
        `${p.name} gave no answer to the defragment within ${p.timeoutSeconds} s: it may still be running there, blocking that member until it ends. No other member was defragmented. Watch ${p.name}'s DB size (etcdctl endpoint status --endpoints=${url}) and ask \`/etcd defrag\` again once it answers`,
      );
    }
    throw new Error(`the defragment of ${p.name} failed: ${e.message}`);
  }
  const took = ((Date.now() - t0) / 1000).toFixed(1);
  const after = await waitReady(ctx, `after defragmenting ${p.name}`);
  const now = after.report.members.find((x) => x.idHex === p.idHex);
  return {
    summary: `defragmented ${p.name}${moved} in ${took} s: ${before} → ${now?.status ? formatBytes(now.status.dbSize) : '?'}; every member answers again, leader ${after.report.leaderHex}`,
    output: after.report.members.map((x) => dbLine(x)).join('\n'),
  };
}

const isNospace = (a: { alarm: string }) => a.alarm === 'NOSPACE';

/** The quota one member runs with, and where it was learned. */
export interface MemberQuota {
  name: string;
  /** Infinity: the member runs with no quota. */
  bytes: number;
  /** Where it came from: the member itself, or (it would not say) the inventory's etcd.quotaBytes, and why. */
  from: { member: true } | { member: false; why: string };
}

/** Each member's quota as it says itself (see readMemberQuota); the inventory's where it does not, with the reason. */
export async function memberQuotas(ctx: DefragStepContext, members: MemberRow[], inventoryBytes: number): Promise<MemberQuota[]> {
  return Promise.all(
    members.map(async (m): Promise<MemberQuota> => {
      try {
        return { name: m.name, bytes: await readMemberQuota(ctx.cluster, clientUrlOf(ctx.cluster, m)), from: { member: true } };
      } catch (err) {
        return { name: m.name, bytes: inventoryBytes, from: { member: false, why: oneLine((err as Error).message) } };
      }
    }),
  );
}

/** A quota's size in words: "6.0 MB", or "no quota" for a member that runs without one. */
const quotaSize = (bytes: number) => (bytes === Infinity ? 'no quota' : formatBytes(bytes));

/** A quota in words, with where it came from: "6 MB, as m1 runs with" or "2 GB, etcd.quotaBytes in the inventory: m1's own could not be read (…)". */
export function quotaText(q: MemberQuota): string {
  const size = quotaSize(q.bytes);
  return q.from.member ? `${size}, as ${q.name} runs with` : `${size}, etcd.quotaBytes in the inventory: ${q.name}'s own could not be read (${q.from.why})`;
}

export async function alarmDisarm(ctx: DefragStepContext, step: StepOf<'alarm-disarm'>): Promise<StepResult> {
  const inventoryQuota = Number(step.params.quotaBytes);
  const view = await waitReady(ctx, 'before disarming the alarm');
  const client = ctx.pool.client(ctx.cluster, view.healthyEndpoint!);
  const raised = (await listAlarms(client)).filter(isNospace);
  if (raised.length === 0) return { skipped: true, summary: 'no NOSPACE alarm is raised: nothing to disarm' };
  // Each member raises NOSPACE against the quota it runs with (--quota-backend-bytes), which the inventory may not know.
  const quotas = await memberQuotas(ctx, view.report.members, inventoryQuota);
  const quotaOf = (m: MemberRow) => quotas.find((q) => q.name === m.name)!;
  // Disarmed while a database is still over the quota, the next write raises it again: say why instead.
  const over = view.report.members.filter((m) => m.status!.dbSize >= quotaOf(m).bytes);
  if (over.length) {
    throw new Error(
      `${over.map((m) => `${dbLine(m)} is still over its quota of ${quotaText(quotaOf(m))}`).join('; ')}: the data itself is too big, so the alarm was left raised. Delete keys or raise --quota-backend-bytes (and etcd.quotaBytes in the inventory), then \`/etcd defrag\` again`,
    );
  }
  const nameOf = (id: string) => view.report.members.find((m) => m.status?.memberId === id)?.name ?? BigInt(id).toString(16);
  for (const a of raised) await client.maintenance.alarm({ action: 'Deactivate', memberID: a.memberId, alarm: 'Nospace' });
  const left = (await listAlarms(client)).filter(isNospace);
  if (left.length) throw new Error(`NOSPACE is still raised on ${left.map((a) => nameOf(a.memberId)).join(', ')} after the disarm: a write filled a database again meanwhile`);
  // The inventory's quota is what /etcd status warns against: a member that runs with another one is worth a line.
  const differ = quotas.filter((q) => q.from.member && q.bytes !== inventoryQuota);
  const note = differ.length ? [`etcd.quotaBytes in the inventory says ${formatBytes(inventoryQuota)}, but ${differ.map((q) => `${q.name} runs with ${quotaSize(q.bytes)}`).join(', ')}: set it to what the members run with, so that /etcd status warns before the next NOSPACE`] : [];
  return {
    summary: `disarmed NOSPACE on ${raised.map((a) => nameOf(a.memberId)).join(', ')}; every database is under its quota (${quotas.map(quotaText).join('; ')})`,
    output: [...view.report.members.map(dbLine), ...note].join('\n'),
  };
}

/**
 * Deletes the write check's key, asking the member the check wrote through first and then
 * each other endpoint (a delete goes through raft, so any member with a leader takes it):
 * how many keys it deleted, or why every member refused.
 */
async function deleteCheckKey(ctx: DefragStepContext, first: string, key: string): Promise<{ deleted: number } | { error: string }> {
  const errors: string[] = [];
  for (const endpoint of [first, ...ctx.cluster.etcd.endpoints.filter((e) => e !== first)]) {
    try {
      const res = await ctx.pool.client(ctx.cluster, endpoint).delete().key(key);
      return { deleted: Number(res.deleted) };
    } catch (err) {
      errors.push(`${endpoint}: ${oneLine((err as Error).message)}`);
    }
  }
  return { error: errors.join('; ') };
}

export async function writeCheck(ctx: DefragStepContext, step: StepOf<'write-check'>): Promise<StepResult> {
  const key = step.params.key;
  const view = await waitReady(ctx, 'for the write check');
  const voters = view.report.members.filter((m) => !m.learner).length;
  if (voters !== step.params.voters) throw new Error(`${voters} voters answer, the plan had ${step.params.voters}`);
  const endpoint = view.healthyEndpoint!;
  const client = ctx.pool.client(ctx.cluster, endpoint);
  const value = `written by etcd-medic at ${new Date().toISOString()}`;
  let failed: Error | null = null;
  try {
    try {
      await client.put(key).value(value);
    } catch (err) {
      throw new Error(`a write still fails: ${(err as Error).message}`);
    }
    let read: string | null;
    try {
      read = await client.get(key).string();
    } catch (err) {
      throw new Error(`${key} was written but reading it back failed: ${(err as Error).message}`);
    }
    if (read !== value) throw new Error(`${key} read back as ${JSON.stringify(read)}, not what was written`);
  } catch (err) {
    failed = err as Error;
  }
  // Deleted whatever happened above: a put whose answer was lost, or one not read back, may still have left the key in etcd.
  const removed = await deleteCheckKey(ctx, endpoint, key);
  const left = 'error' in removed ? `${key} may be left in etcd: deleting it failed (${removed.error}). Remove it with \`etcdctl del ${key}\`` : null;
  if (failed) {
    const cleanup = 'error' in removed ? left : removed.deleted > 0 ? `${key} was deleted again` : `${key} is not in etcd`;
    throw new Error(`${failed.message}. ${cleanup}`);
  }
  if (left) throw new Error(`a write went through and read back, but ${left}`);
  const alarms = await listAlarms(client);
  if (alarms.length) throw new Error(`writes work, but alarms are raised: ${alarms.map((a) => a.alarm).join(', ')}`);
  return {
    summary: `a write went through (put, read back, deleted ${key}); ${voters} voters healthy, leader ${view.report.leaderHex}; no alarm raised`,
    output: view.report.members.map(dbLine).join('\n'),
  };
}
