import { describe, expect, it } from 'vitest';
import { memberRow } from '../support/fixtures.js';
import { parseInventory } from '../../src/config/load.js';
import { planRestore } from '../../src/runbook/restore-plan.js';
import { planRestoreQuorum } from '../../src/runbook/restore-quorum-plan.js';
import type { ObservedState } from '../../src/runbook/types.js';
import type { MemberRow, StatusReport } from '../../src/status/assess.js';
import type { BackupFacts } from '../../src/backup/store.js';

// A GKE on-prem user cluster: etcd is the StatefulSet kube-etcd in namespace user1 of the admin cluster; no SSH to any member.
const inv = parseInventory(
  `workspace: { roles: { approve: [UBOB], destroy: [UALICE] } }
backups: { dir: /backups }
clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"] }
    platform: { kind: statefulset, namespace: user1 }
    kubeconfig: /admin.conf
    members:
${[0, 1, 2].map((i) => `      - { name: kube-etcd-${i}, host: 10.0.0.${i + 1} }`).join('\n')}
`,
  't.yaml',
);
const cluster = inv.clusters[0]!;
const state: ObservedState = { members: [], leaderHex: null, raftIndex: 100, revision: 50, at: '2026-11-27T03:00:00.000Z' };
const now = new Date('2026-11-27T03:00:00Z');
// Majority lost: only kube-etcd-0 answers, without a leader.
const rows: MemberRow[] = [memberRow(1, { raftIndex: 100, revision: 50, leader: '0' }, { name: 'kube-etcd-0' }), memberRow(2, null, { name: 'kube-etcd-1' }), memberRow(3, null, { name: 'kube-etcd-2' })];
const lost: StatusReport = { cluster: 'prod', at: now, tookMs: 1, verdict: 'QUORUM_LOST', summary: '', next: '', voters: 3, quorum: 2, healthyVoters: 1, tolerance: 0, clusterIdHex: '1', leaderHex: null, members: rows, warnings: [] };
const backup: BackupFacts = { id: '2026-11-27_020000', cluster: 'prod', takenAt: '2026-11-27T02:00:00.000Z', takenBy: 'schedule', fromMember: 'kube-etcd-0', snapshotFile: 'snapshot_2026-11-27_020000.db', resourcesFile: null, bytes: 1, sha256: 'x', revision: 40, totalKeys: 1, hash: 1 };

describe('the host runbooks on a statefulset cluster', () => {
  const refusal = /restore.* is not available on prod: its etcd runs as the StatefulSet user1\/kube-etcd in an admin cluster.*Nothing was changed/s;

  it('restore refuses with a clear message instead of a plan, before anything is done', () => {
    const out = planRestore(inv, cluster, lost, state, { runId: 'r-0000abcd', backup, requestedBy: 'UALICE', channelId: 'C1' }, now);
    expect(out.ok).toBe(false);
    expect(!out.ok && out.reason).toMatch(refusal);
    expect(!out.ok && out.reason).toContain('/etcd replace <member> prod');
  });

  // Before: a plan with a destructive fence ("host unreachable over SSH; approving confirms it is down") and a
  // force-new-cluster "on 10.0.0.1 (no SSH access)" that could only fail once approved.
  it('restore-quorum refuses the same way, whatever the hosts were seen as', () => {
    const hosts = cluster.members.map((m) => ({ name: m.name, reachable: false as const, error: 'no SSH' }));
    for (const r of [{}, { from: 'kube-etcd-0' }, { snapshot: backup }]) {
      const out = planRestoreQuorum(inv, cluster, lost, state, hosts, { runId: 'r-0000abcd', requestedBy: 'UALICE', channelId: 'C1', ...r }, now);
      expect(out.ok).toBe(false);
      expect(!out.ok && out.reason).toMatch(refusal);
    }
  });
});
