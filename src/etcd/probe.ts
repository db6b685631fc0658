import type { ClusterConfig } from '../config/schema.js';
import { classifyError, type EndpointErrorKind, type EtcdPool } from './pool.js';

/** What one member said about itself, numbers as etcd gives them (decimal strings made numbers). */
export interface EndpointStatus {
  memberId: string; // decimal, as the API returns it
  clusterId: string;
  /** The store revision when the member answered. */
  revision: number;
  version: string;
  dbSize: number;
  dbSizeInUse: number;
  leader: string; // decimal member ID, "0" when the member knows no leader
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  errors: string[];
}

export interface ProbedMember {
  id: string; // decimal
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export type EndpointProbe =
  | { endpoint: string; ok: true; status: EndpointStatus; members: ProbedMember[] | null; tookMs: number }
  | { endpoint: string; ok: false; error: { kind: EndpointErrorKind; message: string }; tookMs: number };

export interface AlarmEntry {
  memberId: string;
  alarm: string;
}

export interface ClusterProbe {
  cluster: string;
  at: Date;
  tookMs: number;
  endpoints: EndpointProbe[];
  /** null when no member could answer the alarm list (it needs quorum). */
  alarms: AlarmEntry[] | null;
}

/**
 * Asks every configured endpoint at once, each with its own deadline, for its
 * status and its member list, then the alarm list from the first that answered.
 * Works without quorum: status and member list are served locally by each member.
 */
export async function probeCluster(cluster: ClusterConfig, pool: EtcdPool, now: () => number = Date.now): Promise<ClusterProbe> {
  const started = now();
  const endpoints = await Promise.all(cluster.etcd.endpoints.map((ep) => probeEndpoint(cluster, pool, ep, now)));
  const answered = endpoints.filter((e) => e.ok);
  let alarms: AlarmEntry[] | null = null;
  // The alarm list goes through raft, so without a leader it only runs into the deadline; so it does when
  // fewer than a quorum of voters answer, though a member that just lost its peers still names the old leader.
  const withLeader = answered.find((e) => e.ok && e.status.leader !== '0');
  if (withLeader && !quorumCannotAnswer(endpoints)) {
    try {
      const res = await pool.client(cluster, withLeader.endpoint).maintenance.alarm({ action: 'Get', memberID: 0, alarm: 'None' });
      alarms = res.alarms.map((a) => ({ memberId: a.memberID, alarm: String(a.alarm) }));
    } catch {
      alarms = null;
    }
  }
  return { cluster: cluster.name, at: new Date(started), tookMs: now() - started, endpoints, alarms };
}

/**
 * True when the voters that failed to answer leave fewer than a quorum: raft cannot commit, so a call through
 * it (the alarm list) can only wait out its deadline. Voters whose endpoint was not asked count as up.
 */
export function quorumCannotAnswer(endpoints: EndpointProbe[]): boolean {
  const withList = endpoints.find((e): e is Extract<EndpointProbe, { ok: true }> => e.ok && e.members !== null);
  if (!withList) return false;
  const voters = withList.members!.filter((m) => !m.isLearner);
  const failed = new Set(endpoints.filter((e) => !e.ok).map((e) => e.endpoint));
  const answeredIds = new Set(endpoints.flatMap((e) => (e.ok ? [e.status.memberId] : [])));
  const down = voters.filter((m) => !answeredIds.has(m.id) && m.clientURLs.some((u) => failed.has(u))).length;
  return voters.length - down < Math.floor(voters.length / 2) + 1;
}

async function probeEndpoint(cluster: ClusterConfig, pool: EtcdPool, endpoint: string, now: () => number): Promise<EndpointProbe> {
  const t0 = now();
  const client = pool.client(cluster, endpoint);
  const [status, list] = await Promise.allSettled([client.maintenance.status(), client.cluster.memberList({})]);
  if (status.status === 'rejected') {
    return { endpoint, ok: false, error: classifyError(status.reason), tookMs: now() - t0 };
  }
  const s = status.value;
  return {
    endpoint,
    ok: true,
    tookMs: now() - t0,
    status: {
      memberId: s.header.member_id,
      clusterId: s.header.cluster_id,
      revision: Number(s.header.revision),
      version: s.version,
      dbSize: Number(s.dbSize),
      dbSizeInUse: Number(s.dbSizeInUse),
      leader: s.leader,
      raftIndex: Number(s.raftIndex),
      raftTerm: Number(s.raftTerm),
      raftAppliedIndex: Number(s.raftAppliedIndex),
      isLearner: Boolean(s.isLearner),
      errors: s.errors ?? [],
    },
    members:
      list.status === 'fulfilled'
        ? list.value.members.map((m) => ({
            id: m.ID,
            name: m.name,
            peerURLs: m.peerURLs ?? [],
            clientURLs: m.clientURLs ?? [],
            isLearner: Boolean(m.isLearner),
          }))
        : null,
  };
}
