import type { Etcd3 } from 'etcd3';

/** One raised alarm: the member it is raised for (decimal ID, as the API gives it) and its name as operators write it. */
export interface AlarmEntry {
  memberId: string;
  alarm: string;
}

/**
 * The alarms raised in the cluster, as `etcdctl alarm list` shows them. The
 * list goes through raft: without a leader it only runs into its deadline
 * (the client's default one unless `deadline` is given).
 */
export async function listAlarms(client: Etcd3, deadline?: number): Promise<AlarmEntry[]> {
  const res = await client.maintenance.alarm({ action: 'Get', memberID: 0, alarm: 'None' }, deadline === undefined ? undefined : { deadline });
  // The client names alarms after its enum ("Nospace"); etcdctl, etcd's docs and operators say NOSPACE, CORRUPT.
  return res.alarms.map((a) => ({ memberId: a.memberID, alarm: String(a.alarm).toUpperCase() }));
}
