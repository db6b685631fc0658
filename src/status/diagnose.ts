import type { ClusterConfig } from '../config/schema.js';
import { targetWhat } from '../certs/check.js';
import { URGENT_DAYS } from '../certs/expiry.js';
import { urgentReadings, type TargetReading } from '../certs/targets.js';
import { defragBlocker } from '../runbook/defrag-plan.js';
import { defaultSurvivor } from '../runbook/restore-quorum-plan.js';
import type { CommandOffer } from '../runbook/types.js';
import { DB_NEAR_QUOTA, formatBytes, type MemberRow, type StatusReport, type Stranger } from './assess.js';
import { hostOfUrl } from './members.js';

/** What went wrong, as the runbook that fixes it sees it. */
export type DiagnosisKind = 'review-csrs' | 'renew-certs' | 'defrag' | 'fence' | 'replace' | 'restore-quorum';

/**
 * When two diagnoses apply, the safest fix is offered first: the one that
 * changes least and can least make things worse. Reviewing CSRs only reads until
 * someone decides; certificates are renewed one node at a time; a defragment
 * keeps every key; a fence stops a process that should not run; a replace changes
 * the membership; a quorum restore rebuilds the cluster from one member.
 */
export const SAFETY_ORDER: readonly DiagnosisKind[] = ['review-csrs', 'renew-certs', 'defrag', 'fence', 'replace', 'restore-quorum'];

export interface Diagnosis {
  kind: DiagnosisKind;
  /** Stable while the fault is the same (kind and what it is about): a proactive watch posts when the set of keys changes. */
  key: string;
  /** What to do, short ("Replace m3"). */
  title: string;
  /** The evidence, in one line. */
  evidence: string;
  /** The command its button runs, as the clicker; null when there is nothing the bot can start (the text says what to do). */
  offer: CommandOffer | null;
  /**
   * Set when the fix applies but its planner would refuse it now (a defragment
   * with a member down): no button, and it is listed after the fixes that come first.
   */
  notYet?: string;
}

/** A pending CSR of a control-plane node (a master), as the Kubernetes side lists it. */
export interface PendingCsr {
  name: string;
  node: string;
}

export interface DiagnosisInput {
  cluster: ClusterConfig;
  report: StatusReport;
  /** The certificate readings status took; null when they were not read. */
  certs: TargetReading[] | null;
  /** Pending CSRs of control-plane nodes; null when Kubernetes was not asked or did not answer. */
  csrs: PendingCsr[] | null;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * Pure: what is wrong with the cluster, each with the runbook that fixes it and
 * the evidence, safest first. Nothing when nothing is wrong.
 */
export function diagnose(i: DiagnosisInput): Diagnosis[] {
  const out: Diagnosis[] = [];
  const { cluster, report } = i;
  const quorum = report.verdict === 'HEALTHY' || report.verdict === 'DEGRADED';
  const strangers = report.strangers ?? [];

  for (const s of strangers) out.push(fence(cluster, report, s, quorum));
  if (report.verdict === 'QUORUM_LOST') out.push(restoreQuorum(cluster, report));
  if (quorum) out.push(...replaceable(cluster, report, strangers));
  if (quorum) {
    const d = defrag(cluster, report);
    if (d) out.push(d);
  }
  if (i.certs) out.push(...renewals(cluster, i.certs));
  if (i.csrs?.length) out.push(reviewCsrs(cluster, i.csrs));

  // Without quorum the API server can neither approve a CSR nor renew a kubelet: those fixes come after the restore.
  // (An expired etcd certificate stays first: it may be why the members lost each other.)
  const kubeSide = (d: Diagnosis) => d.kind === 'review-csrs' || d.key.startsWith('renew-certs:kubelet:');
  const rank = (d: Diagnosis) => (d.notYet ? SAFETY_ORDER.length + 1 : !quorum && kubeSide(d) ? SAFETY_ORDER.length : SAFETY_ORDER.indexOf(d.kind));
  return out.map((d, n) => ({ d, n })).sort((a, b) => rank(a.d) - rank(b.d) || a.n - b.n).map((x) => x.d);
}

/** The name the bot and a person type for a member: the inventory's, else its hex ID. */
function refOf(cluster: ClusterConfig, m: MemberRow): string {
  return cluster.members.find((c) => c.name === m.name)?.name ?? m.idHex ?? m.name;
}

const hostsOf = (m: MemberRow) => [...m.peerURLs, ...m.clientURLs].map(hostOfUrl);

function fence(cluster: ClusterConfig, report: StatusReport, s: Stranger, quorum: boolean): Diagnosis {
  const owner = cluster.members.find((m) => m.host === s.host);
  const evidence =
    s.why === 'other-cluster'
      ? `${s.endpoint} answers as member ${s.memberIdHex} of cluster ${s.clusterIdHex}, not of ${report.clusterIdHex ?? 'this cluster'}: a stale member that came back.`
      : `${s.endpoint} answers as member ${s.memberIdHex}, which is no longer in the member list: a removed member whose etcd still runs.`;
  const key = `fence:${s.host}:${s.why}`;
  if (!owner) {
    return { kind: 'fence', key, title: `Stop the etcd on ${s.host}`, evidence: `${evidence} ${s.host} is no host of the inventory, so the bot cannot reach it: stop its etcd there by hand.`, offer: null };
  }
  if (!quorum) {
    // restore-quorum refuses while a member it would fence still listens: it must be stopped first, by hand.
    return { kind: 'fence', key, title: `Stop the etcd on ${owner.name} before restoring quorum`, evidence: `${evidence} Stop it on ${owner.host} (move its manifest or unit away) before \`/etcd restore-quorum\`.`, offer: null };
  }
  // A replace of that member is its fence: etcd stopped on the host, its data moved aside, then it rejoins empty.
  return {
    kind: 'fence',
    key,
    title: `Fence ${owner.name} and rejoin it`,
    evidence: `${evidence} Replace stops it, moves its data aside and adds it back empty.`,
    offer: { command: 'replace', args: [owner.name, cluster.name], label: `Fence and rejoin ${owner.name}` },
  };
}

function restoreQuorum(cluster: ClusterConfig, report: StatusReport): Diagnosis {
  const down = report.members.filter((m) => !m.learner && !m.status);
  const lost = `${report.healthyVoters} of ${report.voters} voters up with a leader, ${report.quorum} needed (${down.map((m) => `${m.name}: ${m.error?.kind ?? 'no answer'}`).join(', ') || 'none answers'})`;
  const pick = defaultSurvivor(cluster, report);
  const offer: CommandOffer = { command: 'restore-quorum', args: [cluster.name], label: pick ? `Restore quorum from ${pick.member.name}` : 'Restore quorum' };
  if (pick) {
    // The planner refuses while any other member still runs (it is not dead: force-new-cluster beside it splits the cluster).
    const running = report.members.filter((m) => m.status && m.name !== pick.member.name).map((m) => m.name);
    if (running.length) {
      const notYet = `${running.join(', ')} still answer${running.length === 1 ? 's' : ''} without a leader: running, not dead. Stop ${running.length === 1 ? 'its' : 'their'} etcd first (or it may elect a leader again with the others: \`/etcd status\` once more), then \`/etcd restore-quorum ${cluster.name}\`.`;
      return { kind: 'restore-quorum', key: 'restore-quorum:not-yet', title: `Restore quorum from ${pick.member.name}, not yet`, evidence: `Majority lost: ${lost}. Survivor ${pick.member.name}: ${pick.why}. Not yet: ${notYet}`, offer: null, notYet };
    }
    return { kind: 'restore-quorum', key: 'restore-quorum', title: `Restore quorum from ${pick.member.name}`, evidence: `Majority lost: ${lost}. Survivor ${pick.member.name}: ${pick.why}.`, offer };
  }
  return {
    kind: 'restore-quorum',
    key: 'restore-quorum',
    title: 'Restore quorum',
    evidence: `Majority lost: ${lost}. No member answers: the plan reads each stopped member's database over SSH and starts from the highest revision (or give \`--snapshot <backup-id>\`).`,
    offer,
  };
}

/** Members that failed while quorum holds: down, raising CORRUPT, or lagging past the cluster's limit. */
function replaceable(cluster: ClusterConfig, report: StatusReport, strangers: Stranger[]): Diagnosis[] {
  const out: Diagnosis[] = [];
  const maxIndex = Math.max(0, ...report.members.map((m) => m.status?.raftIndex ?? 0));
  for (const m of report.members) {
    if (!m.started) continue;
    // A member whose address answers for another cluster (or as a removed member) is the fence's, not a replace of its own.
    const conf = cluster.members.find((c) => c.name === m.name);
    if (strangers.some((s) => hostsOf(m).includes(s.host) || conf?.host === s.host)) continue;
    const ref = refOf(cluster, m);
    const offer: CommandOffer = { command: 'replace', args: [ref, cluster.name], label: `Replace ${ref}` };
    if (!m.status) {
      out.push({ kind: 'replace', key: `replace:${m.name}:down`, title: `Replace ${ref}`, evidence: `${m.name} (${m.idHex}) does not answer (${m.error?.kind ?? 'error'}: ${m.error?.message ?? 'no answer'}) while quorum holds.`, offer });
      continue;
    }
    if (m.alarms.includes('CORRUPT')) {
      out.push({ kind: 'replace', key: `replace:${m.name}:corrupt`, title: `Replace ${ref}`, evidence: `${m.name} (${m.idHex}) raised the CORRUPT alarm: its data no longer matches its peers'.`, offer });
      continue;
    }
    const lag = maxIndex - m.status.raftIndex;
    if (lag > cluster.etcd.lagWarnEntries) {
      out.push({
        kind: 'replace',
        key: `replace:${m.name}:lag`,
        title: `Replace ${ref} if it does not catch up`,
        evidence: `${m.name} (${m.idHex}) lags by ${lag} raft entries (index ${m.status.raftIndex} against ${maxIndex}; the limit is ${cluster.etcd.lagWarnEntries}).`,
        offer,
      });
    }
  }
  return out;
}

function defrag(cluster: ClusterConfig, report: StatusReport): Diagnosis | null {
  const nospace = report.members.filter((m) => m.alarms.includes('NOSPACE'));
  const quota = cluster.etcd.quotaBytes;
  const full = report.members.filter((m) => m.status && m.status.dbSize > DB_NEAR_QUOTA * quota);
  if (nospace.length === 0 && full.length === 0) return null;
  const parts: string[] = [];
  if (nospace.length) parts.push(`alarm NOSPACE on ${nospace.map((m) => m.name).join(', ')} (writes refused)`);
  if (full.length) parts.push(`database ${full.map((m) => `${m.name} ${formatBytes(m.status!.dbSize)}`).join(', ')} of a ${formatBytes(quota)} quota`);
  // The planner's own refusal, asked now: a button it would refuse (a member down) is not offered.
  const notYet = defragBlocker(cluster, report);
  if (notYet) {
    // Its own key: when what held it back is gone, the watch posts again, now with the button.
    return { kind: 'defrag', key: `${nospace.length ? 'defrag:nospace' : 'defrag:near-quota'}:not-yet`, title: 'Compact and defragment, not yet', evidence: `${parts.join('; ')}. Not yet: ${notYet}`, offer: null, notYet };
  }
  return {
    kind: 'defrag',
    key: nospace.length ? 'defrag:nospace' : 'defrag:near-quota',
    title: 'Compact and defragment',
    evidence: `${parts.join('; ')}.`,
    offer: { command: 'defrag', args: [cluster.name], label: 'Compact and defragment' },
  };
}

function renewals(cluster: ClusterConfig, readings: TargetReading[]): Diagnosis[] {
  const urgent = urgentReadings(readings, URGENT_DAYS).filter((r) => r.ok);
  if (urgent.length === 0) return [];
  const state = (rs: TargetReading[]) => (rs.some((r) => r.ok && r.expiry.level === 'error') ? 'expired' : `within-${URGENT_DAYS}d`);
  const line = (rs: TargetReading[]) => {
    const shown = rs.slice(0, 3).map((r) => `${targetWhat(r.target)} ${r.ok ? r.expiry.text : ''}`.trim());
    return `${shown.join('; ')}${rs.length > 3 ? ` and ${rs.length - 3} more` : ''}.`;
  };
  const out: Diagnosis[] = [];
  const kubelets = urgent.filter((r) => r.target.kind === 'kubelet');
  const others = urgent.filter((r) => r.target.kind !== 'kubelet');
  if (kubelets.length) {
    const nodes = [...new Set(kubelets.map((r) => (r.target.kind === 'kubelet' ? (r.target.member ?? '') : '')).filter(Boolean))];
    // A command button carries at most five words: beyond three nodes, the certificates list says which to renew.
    const offer: CommandOffer =
      nodes.length > 0 && nodes.length <= 3
        ? { command: 'kubelets', args: ['renew', cluster.name, ...nodes], label: `Renew the kubelets of ${nodes.join(', ')}` }
        : { command: 'certs', args: [cluster.name], label: 'List the certificates' };
    out.push({ kind: 'renew-certs', key: `renew-certs:kubelet:${state(kubelets)}`, title: `Renew kubelet certificates`, evidence: line(kubelets), offer });
  }
  if (others.length) {
    // The bot does not renew etcd, kube-apiserver or its own certificates: `/etcd certs` says how, member by member.
    out.push({
      kind: 'renew-certs',
      key: `renew-certs:etcd:${state(others)}`,
      title: `Renew ${plural(others.length, 'certificate')}`,
      evidence: line(others),
      offer: { command: 'certs', args: [cluster.name], label: 'How to renew them' },
    });
  }
  return out;
}

function reviewCsrs(cluster: ClusterConfig, csrs: PendingCsr[]): Diagnosis {
  const nodes = [...new Set(csrs.map((c) => c.node))].sort();
  const names = csrs.slice(0, 3).map((c) => c.name);
  return {
    kind: 'review-csrs',
    key: `review-csrs:${nodes.join(',')}`,
    title: `Review ${plural(csrs.length, 'pending CSR')}`,
    evidence: `${plural(csrs.length, 'CSR')} of control-plane node${nodes.length === 1 ? '' : 's'} ${nodes.join(', ')} wait${csrs.length === 1 ? 's' : ''} for approval (${names.join(', ')}${csrs.length > 3 ? ', …' : ''}).`,
    offer: { command: 'csr', args: [cluster.name], label: `Review ${plural(csrs.length, 'pending CSR')}` },
  };
}
