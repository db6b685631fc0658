import { parseInventory } from '../../src/config/load.js';
import type { MemberRow } from '../../src/status/assess.js';

/** An inventory of one cluster, "prod", of three masters on 10.0.0.1-3, with the given workspace line. */
export function threeMasters(workspace: string) {
  const fp = 'SHA256:' + 'A'.repeat(43);
  const inventory = parseInventory(
    `workspace: ${workspace}
backups: { dir: /backups }
clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"] }
    members:
${[1, 2, 3].map((i) => `      - { name: m${i}, host: 10.0.0.${i}, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${fp} } }`).join('\n')}
`,
    't.yaml',
  );
  return { inventory, cluster: inventory.clusters[0]! };
}

/**
 * Member i of threeMasters as a status report shows it: answering with the given raft figures
 * (and leader, errors), or refusing connections when `status` is null.
 */
export function memberRow(
  i: number,
  status: { raftIndex: number; applied?: number; revision: number; leader: string; errors?: string[] } | null,
  over: Partial<MemberRow> = {},
): MemberRow {
  return {
    name: `m${i}`,
    idHex: `a${i}`,
    peerURLs: [`https://10.0.0.${i}:2380`],
    clientURLs: [`https://10.0.0.${i}:2379`],
    started: true,
    learner: false,
    reachable: !!status,
    error: status ? null : { kind: 'refused', message: 'connection refused' },
    isLeader: false,
    status: status
      ? { memberId: String(i), clusterId: '1', revision: status.revision, version: '3.4.23', dbSize: 1, dbSizeInUse: 1, leader: status.leader, raftIndex: status.raftIndex, raftTerm: 2, raftAppliedIndex: status.applied ?? status.raftIndex, isLearner: false, errors: status.errors ?? [] }
      : null,
    alarms: [],
    ...over,
  };
}
