import type { BackupStore } from '../../backup/store.js';
import type { ClusterConfig } from '../../config/schema.js';
import { hexId, openEndpoint, type EtcdPool } from '../../etcd/pool.js';
import type { StepResult } from '../../runbook/engine.js';
import { retryWhile } from '../../runbook/retry.js';
import { param } from '../../runbook/params.js';
import type { StepOf } from '../../runbook/types.js';
import { backupCluster, describeBackup } from '../backups.js';
import { viewCluster, clientUrlOf } from '../cluster-view.js';
import { afterRemoval, hostOfUrl } from '../../status/members.js';
import type { Logger } from '../../log.js';
import type { HostLookup } from '../dns-lookup.js';
import { lookAtPeerNames } from '../peer-names.js';
import { caughtUpLook } from './caught-up.js';

export interface EtcdStepContext {
  cluster: ClusterConfig;
  pool: EtcdPool;
  store: BackupStore;
  keep: number;
  log: Logger;
  /** How the verify step resolves the DNS names in peer URLs: the system's resolver unless a test gives its own. */
  lookup?: HostLookup;
}


/**
 * The run's own snapshot. The planned ID has one-second resolution, so a backup of that
 * name taken before the run was planned (the schedule, `/etcd backup`, in the same second)
 * is not this run's: it may miss the latest writes. A retry finds the run's own by its ID
 * (or ID-n) and by its time; otherwise a new one is taken, under ID-n if ID is taken.
 */
export async function snapshot(ctx: EtcdStepContext, step: StepOf<'snapshot'>, run: { requestedBy: string; createdAt: string }, signal?: AbortSignal): Promise<StepResult> {
  const planned = param(step, 'backupId');
  const own = (await ctx.store.list(ctx.cluster.name)).find((f) => (f.id === planned || f.id.startsWith(`${planned}-`)) && f.takenAt >= run.createdAt);
  if (own) return { skipped: true, summary: `backup ${own.id} was already taken: ${own.bytes} bytes, revision ${own.revision}, verified` };
  let id = planned;
  for (let n = 2; await ctx.store.get(ctx.cluster.name, id); n++) id = `${planned}-${n}`;
  const { facts } = await backupCluster(ctx.cluster, ctx.pool, ctx.store, { takenBy: run.requestedBy, id, fromMember: param(step, 'from'), keep: ctx.keep, signal, log: ctx.log });
  return { summary: `backup ${facts.id}: ${facts.bytes} bytes from ${facts.fromMember}, revision ${facts.revision}, ${facts.totalKeys} db keys, verified`, output: describeBackup(facts).replace(/[*`]/g, '') };
}

const unhealthy = (e: Error) => /unhealthy cluster|leader changed|no leader|timed out|deadline/i.test(e.message);

export async function memberRemove(ctx: EtcdStepContext, step: StepOf<'member-remove'>): Promise<StepResult> {
  const idHex = param(step, 'idHex');
  const view = await viewCluster(ctx.cluster, ctx.pool);
  const target = view.report.members.find((m) => m.idHex === idHex);
  if (!target) return { skipped: true, summary: `member ${idHex} is no longer in the member list: already removed, nothing done` };
  // Re-check the quorum rule against the live state, not the plan's.
  const removal = afterRemoval(view.report.members, target);
  if (!removal.ok) {
    throw new Error(`refusing to remove ${idHex}: ${removal.healthyLeft} healthy voters would remain of ${removal.voters - 1}, quorum needs ${removal.quorumAfter}`);
  }
  if (!view.healthyEndpoint) throw new Error('no healthy member to send member remove to');
  const endpoint = view.healthyEndpoint;
  // etcd refuses to remove a voter while its peers have been connected for only a few seconds
  // ("unhealthy cluster"): retry, bounded. A retry (not the first try: the view above is fresh)
  // looks again first, since the remove may have gone through before its answer was lost.
  let first = true;
  const res = await retryWhile(
    async () => {
      if (!first && !(await viewCluster(ctx.cluster, ctx.pool)).report.members.some((m) => m.idHex === idHex)) return null;
      first = false;
      return ctx.pool.client(ctx.cluster, endpoint).cluster.memberRemove({ ID: BigInt(`0x${idHex}`).toString() });
    },
    unhealthy,
    { maxMs: 30_000, onRetry: (e, n) => ctx.log.warn({ attempt: n, err: e.message }, 'member remove retried') },
  );
  if (!res) return { skipped: true, summary: `member ${idHex} left the member list while retrying: nothing more done` };
  return {
    summary: `removed ${param(step, 'name')} (${idHex}); ${res.members.length} members remain`,
    output: res.members.map((m) => `${hexId(m.ID)}, ${m.name || '(unstarted)'}, ${m.peerURLs.join(',')}${m.isLearner ? ', learner' : ''}`).join('\n'),
  };
}

/**
 * An error after which a membership call may or may not have taken effect: the
 * request may have reached the leader although its answer was lost.
 */
export const ambiguous = (e: Error) => /timed out|deadline|socket closed|ECONNRESET|EPIPE|UNAVAILABLE|other side closed|cancelled|connection (reset|closed)/i.test(e.message);

/**
 * Retries a membership call (member add, promote) while `retryable` says so;
 * before every retry `check` looks at the member list, and when it finds the
 * first try took effect (its answer lost to a timeout), that ends it: nothing is
 * done twice.
 */
export async function retryUnlessDone<T, D>(
  call: () => Promise<T>,
  check: () => Promise<D | null>,
  retryable: (e: Error) => boolean,
  opts: { maxMs: number; startMs?: number; capMs?: number; onRetry?: (err: Error, attempt: number) => void },
): Promise<{ result: T; tries: number } | { done: D; tries: number }> {
  let tries = 0;
  return retryWhile(async () => {
    if (tries > 0) {
      const d = await check();
      if (d !== null) return { done: d, tries };
    }
    tries++;
    return { result: await call(), tries };
  }, retryable, opts);
}

/** The member with this peer URL in a member list, as a learner or a voter. */
export function memberWithPeer<M extends { peerURLs: string[] }>(members: M[], peerUrl: string): M | undefined {
  return members.find((m) => m.peerURLs.includes(peerUrl));
}

export async function memberAddLearner(ctx: EtcdStepContext, step: StepOf<'member-add-learner'>): Promise<StepResult> {
  const peerUrl = param(step, 'peerUrl');
  const view = await viewCluster(ctx.cluster, ctx.pool);
  const existing = memberWithPeer(view.report.members, peerUrl);
  if (existing) {
    return { skipped: true, summary: `a member with peer URL ${peerUrl} is already in the list (${existing.idHex}, ${existing.learner ? 'learner' : 'voter'}, ${existing.started ? 'started' : 'not started'}): nothing added` };
  }
  if (!view.healthyEndpoint) throw new Error('no healthy member to send member add to');
  const endpoint = view.healthyEndpoint;
  // Right after a leader (re)start etcd refuses member add for a few seconds: retry, bounded.
  // A try that timed out may have added the learner all the same: each retry looks first.
  const out = await retryUnlessDone(
    () => ctx.pool.client(ctx.cluster, endpoint).cluster.memberAdd({ peerURLs: [peerUrl], isLearner: true }),
    async () => memberWithPeer((await viewCluster(ctx.cluster, ctx.pool)).report.members, peerUrl) ?? null,
    (e) => unhealthy(e) || ambiguous(e),
    { maxMs: 60_000, capMs: 1000, onRetry: (e, n) => ctx.log.warn({ attempt: n, err: e.message }, 'member add retried') },
  );
  if ('done' in out) {
    return { summary: `${param(step, 'name')} is in the list as ${out.done.learner ? 'learner' : 'voter'} ${out.done.idHex}: an earlier try went through though its answer was lost, so it was not added again` };
  }
  const res = out.result;
  const id = hexId(res.member.ID);
  const initial = res.members.map((m) => `${m.name || param(step, 'name')}=${m.peerURLs[0]}`).join(',');
  return { summary: `added ${param(step, 'name')} as learner ${id}`, output: `ETCD_NAME="${param(step, 'name')}"\nETCD_INITIAL_CLUSTER="${initial}"\nETCD_INITIAL_CLUSTER_STATE="existing"` };
}

export async function waitCaughtUp(ctx: EtcdStepContext, step: StepOf<'wait-caught-up'>, signal?: AbortSignal): Promise<StepResult> {
  const peerUrl = param(step, 'peerUrl');
  const deadline = Date.now() + 180_000;
  let last = 'not yet seen';
  // While the new member starts, only etcd is waited on: its own client URL is asked alone, often, with a short
  // deadline, on a client that reconnects at once, and the whole cluster is looked at once it answers.
  const member = ctx.cluster.members.find((x) => x.name === param(step, 'name'));
  const ownUrl = member ? ctx.cluster.etcd.endpoints.find((e) => hostOfUrl(e) === member.host) : undefined;
  const watch = ownUrl ? openEndpoint(ctx.cluster, ownUrl, 500, { fastReconnect: true }) : null;
  // The whole look still comes every 10 s while the member does not answer there: the inventory's URL may not be
  // where it serves (each whole look can cost a deadline while it starts, so not more often).
  let lookedAt = Date.now();
  try {
    while (Date.now() < deadline) {
      // A stop request ends the wait now, not after 180 s.
      if (signal?.aborted) throw new Error(`stopped waiting for ${param(step, 'name')} (last: ${last}): ${(signal.reason as Error).message}`);
      const own = watch ? await watch.maintenance.status().catch(() => null) : null;
      if (watch && !own && Date.now() - lookedAt < 10_000) {
        if (last === 'not yet seen') last = 'not answering yet';
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      lookedAt = Date.now();
      const view = await viewCluster(ctx.cluster, ctx.pool);
      // Its raft index as it told the view, or as it told the watch (the same member: its ID checked).
      const look = caughtUpLook(view.report.members, peerUrl, own ? { idHex: hexId(own.header.member_id), raftIndex: Number(own.raftIndex) } : null, ctx.cluster.etcd.lagWarnEntries);
      if (look.caughtUp) return { summary: look.summary };
      last = look.last;
      await new Promise((r) => setTimeout(r, own ? 100 : 200));
    }
  } finally {
    watch?.close();
  }
  throw new Error(`${param(step, 'name')} did not catch up within 180 s (last: ${last})`);
}

export async function promote(ctx: EtcdStepContext, step: StepOf<'promote'>): Promise<StepResult> {
  const peerUrl = param(step, 'peerUrl');
  const view = await viewCluster(ctx.cluster, ctx.pool);
  const m = view.report.members.find((x) => x.peerURLs.includes(peerUrl));
  if (!m) throw new Error(`no member with peer URL ${peerUrl} to promote`);
  if (!m.learner) return { skipped: true, summary: `${m.name} (${m.idHex}) is already a voter: nothing done` };
  if (!view.healthyEndpoint) throw new Error('no healthy member to send member promote to');
  const endpoint = view.healthyEndpoint;
  // "can only promote a learner member which is in sync with leader" until it has caught up.
  // A try that timed out may have promoted it all the same: each retry looks first.
  const out = await retryUnlessDone(
    () => ctx.pool.client(ctx.cluster, endpoint).cluster.memberPromote({ ID: BigInt(`0x${m.idHex}`).toString() }),
    async () => {
      const now = memberWithPeer((await viewCluster(ctx.cluster, ctx.pool)).report.members, peerUrl);
      return now && !now.learner ? now : null;
    },
    (e) => /in sync with leader|not ready|unhealthy cluster|leader changed/i.test(e.message) || ambiguous(e),
    { maxMs: 120_000, startMs: 100, capMs: 2000 },
  );
  if ('done' in out) return { summary: `${m.name} (${m.idHex}) is a voter: an earlier try went through though its answer was lost, so it was not promoted again` };
  return { summary: `promoted ${m.name} (${m.idHex}) to voter after ${out.tries} attempt${out.tries === 1 ? '' : 's'}` };
}

export async function verify(ctx: EtcdStepContext, step: StepOf<'verify'>): Promise<StepResult> {
  const expectVoters = Number(step.params.voters);
  const minRevision = Number(step.params.minRevision);
  const deadline = Date.now() + 60_000;
  let problems: string[] = [];
  while (Date.now() < deadline) {
    const view = await viewCluster(ctx.cluster, ctx.pool);
    const r = view.report;
    problems = [];
    if (r.verdict !== 'HEALTHY') problems.push(`verdict ${r.verdict}: ${r.summary}`);
    const voters = r.members.filter((m) => !m.learner).length;
    if (voters !== expectVoters) problems.push(`${voters} voters, expected ${expectVoters}`);
    if (r.members.some((m) => m.learner)) problems.push('a learner is still in the list');
    const leaders = new Set(r.members.filter((m) => m.status).map((m) => m.status!.leader));
    if (leaders.size !== 1) problems.push('members disagree on the leader');
    if (view.state.revision < minRevision) problems.push(`revision ${view.state.revision} is below ${minRevision}, the revision when planned`);
    if (problems.length === 0) {
      const summary = `HEALTHY: ${voters} voters, leader ${r.leaderHex}, revision ${view.state.revision} (planned at ${minRevision})`;
      const output = r.members.map((m) => `${m.idHex}, ${m.name}, ${clientUrlOf(ctx.cluster, m)}, index ${m.status?.raftIndex}`).join('\n');
      if (!step.params.dnsNames) return { summary, output };
      // etcd is whole: whatever the names say now ends the run with a caveat, never fails it.
      const members = r.members.filter((m) => m.idHex !== null).map((m) => ({ name: m.started ? m.name : '', idHex: m.idHex, peerURLs: m.peerURLs }));
      const { check, caveat } = await lookAtPeerNames(members, ctx.cluster.members, ctx.lookup);
      const names =
        check.names === 0
          ? 'peer URLs on IP addresses, no DNS name to check'
          : `${check.ok.length} of ${check.names} DNS name${check.names === 1 ? '' : 's'} in peer URLs resolve to the inventory's addresses`;
      return { summary: `${summary}; ${names}`, output: [output, ...check.ok, ...check.problems].join('\n'), caveat };
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`the cluster did not verify within 60 s: ${problems.join('; ')}`);
}
