import type { ClusterConfig } from '../config/schema.js';
import { listAlarms, type AlarmEntry } from './alarms.js';
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

export interface ClusterProbe {
  cluster: string;
  at: Date;
  tookMs: number;
  endpoints: EndpointProbe[];
  /** null when no member could answer the alarm list (it needs quorum). */
  alarms: AlarmEntry[] | null;
}

/** What is known while a probe is still running: the endpoints settled so far, in the order they settled. */
export interface ProbeProgress {
  settled: EndpointProbe[];
  /** Every endpoint has settled, but the alarm list (asked of a member that knows a leader) has not come back yet. */
  alarmsPending: boolean;
}

/**
 * Asks every configured endpoint at once, each with its own deadline, for its
 * status and its member list, and the alarm list from the first member that
 * answers knowing a leader. Works without quorum: status and member list are
 * served locally by each member. The whole probe ends within one deadline
 * (plus the time to answer), however many members are frozen.
 */
export async function probeCluster(
  cluster: ClusterConfig,
  pool: EtcdPool,
  now: () => number = Date.now,
  onProgress?: (p: ProbeProgress) => void,
): Promise<ClusterProbe> {
  const started = now();
  // A wall-clock deadline for gRPC: the alarm list must not outlive the members' own deadlines.
  const alarmDeadline = Date.now() + cluster.etcd.callTimeoutMs;
  let alarmCall: Promise<AlarmEntry[] | null> | null = null;
  let alarmsDone = false;
  const settled: EndpointProbe[] = [];
  const total = cluster.etcd.endpoints.length;
  const endpoints = await Promise.all(
    cluster.etcd.endpoints.map((ep) =>
      probeEndpoint(cluster, pool, ep, now).then((e) => {
        // The alarm list goes through raft, so without a leader it only runs into the deadline. Asked as
        // soon as a member that knows a leader answers, beside the other members' calls rather than after
        // them: when that leader is frozen, the list then costs the same deadline, not a second one.
        if (!alarmCall && e.ok && e.status.leader !== '0') {
          alarmCall = readAlarms(pool, cluster, e.endpoint, alarmDeadline).finally(() => (alarmsDone = true));
        }
        settled.push(e);
        try {
          onProgress?.({ settled: [...settled], alarmsPending: settled.length === total && alarmCall !== null && !alarmsDone });
        } catch {
          // Progress is for the reader's patience; a fault in showing it must not lose the answer.
        }
        return e;
      }),
    ),
  );
  // When fewer than a quorum of voters answer, raft cannot commit: the alarm list can only wait out its deadline
  // (a member that just lost its peers still names the old leader). It is left to end on its own, unread.
  const alarms = alarmCall && !quorumCannotAnswer(endpoints) ? await alarmCall : null;
  return { cluster: cluster.name, at: new Date(started), tookMs: now() - started, endpoints, alarms };
}

async function readAlarms(pool: EtcdPool, cluster: ClusterConfig, endpoint: string, deadline: number): Promise<AlarmEntry[] | null> {
  try {
    return await listAlarms(pool.client(cluster, endpoint), deadline);
  } catch {
    return null;
  }
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
