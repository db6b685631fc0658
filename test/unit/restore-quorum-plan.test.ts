import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STEPS } from '../../src/steps/index.js';
import { memberRow, threeMasters } from '../support/fixtures.js';
import { stepOf } from '../support/steps.js';
import type { BackupFacts } from '../../src/backup/store.js';
import { planRestoreQuorum, type HostView } from '../../src/runbook/restore-quorum-plan.js';
import { planRestore } from '../../src/runbook/restore-plan.js';
import { createLogger } from '../../src/log.js';
import { forceRedeployment } from '../../src/worker/steps/kube-steps.js';
import type { ObservedState } from '../../src/runbook/types.js';
import type { MemberRow, StatusReport } from '../../src/status/assess.js';

const { inventory, cluster } = threeMasters('{ roles: { approve: [UBOB] } }');
const now = new Date('2026-11-23T03:00:00Z');
const state: ObservedState = { members: [], leaderHex: null, raftIndex: 0, revision: 0, at: now.toISOString() };

// Survivors of a lost quorum: they answer, but know no leader.
const row = (i: number, status: { raftIndex: number; applied?: number; revision: number } | null, over: Partial<MemberRow> = {}): MemberRow =>
  memberRow(i, status && { ...status, leader: '0', errors: ['etcdserver: no leader'] }, over);
const lost = (members: MemberRow[]): StatusReport => ({ cluster: 'prod', at: now, tookMs: 1, verdict: 'QUORUM_LOST', summary: '', next: '', voters: 3, quorum: 2, healthyVoters: 0, tolerance: 0, clusterIdHex: '1', leaderHex: null, members, warnings: [] });
const down = (name: string, over: Partial<Extract<HostView, { reachable: true }>> = {}): HostView => ({ name, reachable: true, listening: false, hasConfig: false, hasData: false, offlineRevision: null, ...over });
const req = (over: Partial<Parameters<typeof planRestoreQuorum>[5]> = {}) => ({ runId: 'r-0000abcd', requestedBy: 'UALICE', channelId: 'CINC', ...over });
const plan = (report: StatusReport, hosts: HostView[], over = {}) => planRestoreQuorum(inventory, cluster, report, state, hosts, req(over), now);
const reason = (o: ReturnType<typeof plan>) => (o.ok ? 'planned' : o.reason);

describe('planRestoreQuorum', () => {
  it('picks the running member with the highest raft index, ties by applied index, and plans force-new-cluster then growth', () => {
    const out = plan(lost([row(1, { raftIndex: 90, revision: 40 }), row(2, { raftIndex: 95, applied: 94, revision: 41 }), row(3, null)]), [down('m3')], {});
    // m2 answers too: it is not dead, so the plan is refused rather than fencing a running member.
    expect(reason(out)).toContain('m1 still answers');

    const two = plan(lost([row(1, { raftIndex: 90, revision: 40 }), row(2, null), row(3, null)]), [down('m2'), down('m3')]);
    if (!two.ok) throw new Error(two.reason);
    expect(two.run.target).toBe('m1');
    expect(two.run.steps.map((s) => [s.kind, s.destructive])).toEqual([
      ['snapshot', false],
      ['fence', true],
      ['force-new-cluster', true],
      ['member-add-learner', false],
      ['write-manifest', false],
      ['wait-caught-up', false],
      ['promote', false],
      ['member-add-learner', false],
      ['write-manifest', false],
      ['wait-caught-up', false],
      ['promote', false],
      ['verify', false],
      ['kube-check', false],
    ]);
    expect(stepOf(two.run.steps[4], 'write-manifest').params.initialCluster).toBe('m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380');
    expect(stepOf(two.run.steps[8], 'write-manifest').params.initialCluster).toBe('m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380');
    expect(two.run.rationale).toContain('force-new-cluster path: m1 is the most up-to-date survivor (raft index 90, applied 90)');
  });

  it('ranks stopped members by the revision of their database when none runs, and states the loss', () => {
    const out = plan(lost([row(1, null), row(2, null), row(3, null)]), [
      down('m1', { hasData: true, hasConfig: true, offlineRevision: 642 }),
      down('m2', { hasData: true, hasConfig: true, offlineRevision: 643 }),
      down('m3', { hasData: true, hasConfig: true, offlineRevision: 641 }),
    ]);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.target).toBe('m2');
    expect(out.run.steps[0]!.kind).toBe('fence'); // no snapshot: the survivor does not run
    expect(out.run.rationale).toContain('(stopped; its database is at revision 643)');
    expect(out.run.rationale).toContain('Data loss: none seen');
  });

  it('refuses a hung member, a cluster with nothing to restore from, and a quorum that holds', () => {
    expect(reason(plan(lost([row(1, { raftIndex: 9, revision: 5 }), row(2, null), row(3, null)]), [down('m2', { listening: true }), down('m3')]))).toContain(
      'm2 is supposed to be dead, but etcd still listens on 10.0.0.2:2379',
    );
    expect(reason(plan(lost([row(1, null), row(2, null), row(3, null)]), [down('m1'), down('m2'), down('m3')]))).toContain('no member has data left');
    expect(reason(plan({ ...lost([]), verdict: 'DEGRADED' }, []))).toContain('quorum holds');
  });

  it('asks the approver to confirm hosts it cannot reach', () => {
    const out = plan(lost([row(1, { raftIndex: 9, revision: 5 }), row(2, null), row(3, null)]), [down('m2'), { name: 'm3', reachable: false, error: 'no SSH handshake within 5000 ms' }]);
    if (!out.ok) throw new Error(out.reason);
    const fence = out.run.steps.find((s) => s.kind === 'fence')!;
    expect(fence.params.unconfirmed).toEqual(['m3']);
    expect(fence.operation).toContain('m3: host unreachable over SSH (no SSH handshake within 5000 ms); approving confirms it is down');
  });

  it('restores a snapshot onto the survivor and counts the revisions lost', () => {
    const backup = { id: '2026-11-22_030000', revision: 30, snapshotFile: 'snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z' } as BackupFacts;
    const out = plan(lost([row(1, { raftIndex: 9, revision: 42 }), row(2, null), row(3, null)]), [down('m2'), down('m3')], { snapshot: backup });
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.map((s) => [s.kind, s.destructive])).toEqual([
      ['verify-backup', false],
      ['apiservers', true],
      ['fence', true],
      ['restore-snapshot', true],
      ...[2, 3].flatMap(() => [['member-add-learner', false], ['write-manifest', false], ['wait-caught-up', false], ['promote', false]]),
      ['verify', false],
      ['apiservers', false],
      ['kube-check', false],
    ]);
    // kube-apiserver stopped on the masters before the restore and started after, as /etcd restore does.
    expect(stepOf(out.run.steps[1], 'apiservers').params.action).toBe('stop');
    expect(stepOf(out.run.steps.at(-2), 'apiservers').params.action).toBe('start');
    expect(stepOf(out.run.steps[1], 'apiservers').params.hosts.map((h) => h.name)).toEqual(['m1', 'm2', 'm3']);
    expect(out.run.steps[3]!.operation).toContain('refuse unless the restored database reads revision 30 offline (etcdctl snapshot status)');
    expect(out.run.rationale).toContain('Data loss: the last revision seen was 42; the restored state is at revision 30: 12 revisions lost.');
  });
});

describe('planRestore', () => {
  it('stops kube-apiserver and etcd everywhere behind approvals, restores every member with one initial cluster, starts kube-apiserver again', () => {
    const backup = { id: '2026-11-22_030000', revision: 30, snapshotFile: 'snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z' } as BackupFacts;
    const out = planRestore(inventory, cluster, lost([row(1, { raftIndex: 9, revision: 42 }), row(2, null), row(3, null)]), state, { runId: 'r-0000abcd', backup, requestedBy: 'UALICE', channelId: 'CINC' }, now);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.map((s) => [s.kind, s.destructive])).toEqual([
      ['verify-backup', false],
      ['snapshot', false],
      ['apiservers', true],
      ['fence', true],
      ['restore-snapshot', false],
      ['restore-snapshot', false],
      ['restore-snapshot', false],
      ['verify', false],
      ['apiservers', false],
      ['kube-check', false],
    ]);
    const initial = new Set(out.run.steps.filter((s) => s.kind === 'restore-snapshot').map((s) => s.params.initialCluster));
    expect([...initial]).toEqual(['m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380']);
    expect(out.run.rationale).toContain('12 revisions after the snapshot will be gone');
  });

  it('looks for etcd on the ports the member list gives, not only 2379/2380', () => {
    const backup = { id: '2026-11-22_030000', revision: 30, snapshotFile: 'snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z' } as BackupFacts;
    const odd = (i: number) => ({ peerURLs: [`https://10.0.0.${i}:12380`], clientURLs: [`https://10.0.0.${i}:12379`] });
    const r = lost([row(1, { raftIndex: 9, revision: 42 }, odd(1)), row(2, null, odd(2)), row(3, null, odd(3))]);
    const out = planRestore(inventory, cluster, r, state, { runId: 'r-0000abcd', backup, requestedBy: 'UALICE', channelId: 'CINC' }, now);
    if (!out.ok) throw new Error(out.reason);
    const fence = out.run.steps.find((s) => s.kind === 'fence')!;
    expect(fence.params.hosts[1]!.listen).toEqual(['10.0.0.2:2379', '10.0.0.2:12379', '10.0.0.2:12380']);
    expect(fence.operation).toContain('nothing on 10.0.0.2:2379, 10.0.0.2:12379, 10.0.0.2:12380, no etcd process on /var/lib/etcd');
    const restore = out.run.steps.find((s) => s.kind === 'restore-snapshot')!;
    expect(restore.params.initialCluster).toBe('m1=https://10.0.0.1:12380,m2=https://10.0.0.2:12380,m3=https://10.0.0.3:12380');
  });
});

describe('a restore planned on a host whose config an earlier run left aside', () => {
  it('is refused before anything acts, naming the copy to put back; a host with its config passes', () => {
    const backup = { id: '2026-11-22_030000', revision: 30, snapshotFile: 'snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z' } as BackupFacts;
    const root = mkdtempSync(join(tmpdir(), 'medic-restore-layout-'));
    const c = { ...cluster, platform: { ...cluster.platform, manifestsDir: join(root, 'manifests') } } as typeof cluster;
    const out = planRestore(inventory, c, lost([row(1, { raftIndex: 9, revision: 42 }), row(2, null), row(3, null)]), state, { runId: 'r-0000abcd', backup, requestedBy: 'UALICE', channelId: 'CINC' }, now);
    if (!out.ok) throw new Error(out.reason);
    const step = stepOf(out.run.steps.find((s) => s.kind === 'restore-snapshot'), 'restore-snapshot');
    const look = () => spawnSync('bash', ['-c', ['set -euo pipefail', ...STEPS['restore-snapshot'].hosts.layout!(step)].join('\n')], { encoding: 'utf8' });
    mkdirSync(join(root, 'manifests'));
    mkdirSync(join(root, 'etcd-medic-aside'));
    // The fault: an earlier restore failed after it moved m1's manifest aside under its own run.
    const kept = join(root, 'etcd-medic-aside', 'etcd.yaml.r-1111aaaa');
    writeFileSync(kept, 'kept');
    const refused = look();
    expect(refused.status).toBe(0);
    expect(refused.stdout).toBe(`layout:m1 has no etcd config at ${step.params.config}, so a restored etcd could not be started there; an earlier run kept it at ${kept}: put it back (mv ${kept} ${step.params.config}) and ask again\n`);
    writeFileSync(step.params.config, 'back');
    expect(look().stdout).toBe('');
    rmSync(root, { recursive: true });
  });
});

describe('restores of OpenShift 4.4+ clusters, whose etcd pods the etcd operator writes', () => {
  const ocp4 = (manifestFile: string, kubeconfig?: string) => ({
    ...cluster,
    ...(kubeconfig ? { kubeconfig } : {}),
    platform: { kind: 'openshift4' as const, manifestsDir: '/etc/kubernetes/manifests', manifestFile, dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd', controlPlaneManifests: ['kube-apiserver-pod.yaml'], kubeletCert: '/k.pem', kubeletConfig: '/k.conf', kubeletBootstrapConfig: '/b.conf', kubeletUnit: 'kubelet' },
  });
  const survivor = lost([row(1, { raftIndex: 90, revision: 40 }), row(2, null), row(3, null)]);
  const quorum = (c: typeof cluster) => planRestoreQuorum(inventory, c, survivor, state, [down('m2', { hasConfig: true }), down('m3', { hasConfig: true })], req(), now);

  it('end by forcing the operator to redeploy etcd (once per run, after the Kubernetes check), and never on 4.1–4.3', () => {
    const out = quorum(ocp4('etcd-pod.yaml', '/etc/etcd-medic/kubeconfig'));
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.slice(-2).map((s) => s.kind)).toEqual(['kube-check', 'force-redeployment']);
    const step = stepOf(out.run.steps.at(-1), 'force-redeployment');
    expect(step.destructive).toBe(false);
    expect(step.params).toEqual({ resource: { group: 'operator.openshift.io', version: 'v1', plural: 'etcds', name: 'cluster' }, reasonPrefix: 'recovery-r-0000abcd', waitSeconds: 180 });
    expect(step.operation).toContain('merge patch {"spec":{"forceRedeploymentReason":"recovery-r-0000abcd-<time>"}}');
    const b = { id: '2026-11-22_030000', revision: 30, snapshotFile: 'snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z' } as BackupFacts;
    const restore = planRestore(inventory, ocp4('etcd-pod.yaml', '/etc/etcd-medic/kubeconfig'), survivor, state, { runId: 'r-1', backup: b, requestedBy: 'UALICE', channelId: 'C' }, now);
    if (!restore.ok) throw new Error(restore.reason);
    expect(restore.run.steps.at(-1)!.kind).toBe('force-redeployment');
    // No master is grown back from the survivor's etcd-pod.yaml (the operator writes one per node): the host's look refuses one without its own.
    const write = stepOf(out.run.steps.find((s) => s.kind === 'write-manifest'), 'write-manifest');
    expect(write.params.templateFrom).toBeUndefined();
    expect(write.params.ownConfigOnly).toBe(true);
    const look = (lines: string[]) => spawnSync('bash', ['-c', lines.join('\n')], { encoding: 'utf8' }).stdout;
    const layout = STEPS['write-manifest'].hosts.layout(write);
    expect(look(layout)).toBe(`layout:m2's host has no /etc/kubernetes/manifests/etcd-pod.yaml: on OpenShift 4.4+ the etcd operator writes each master's etcd-pod.yaml for that node (its NODE_<node>_ variables and certificates), so another master's is not adapted. Put m2's own back at /etc/kubernetes/manifests/etcd-pod.yaml (a backup's, or the operator's copy under /etc/kubernetes/static-pod-resources/etcd-pod-<revision>/), then ask again\n`);
    const dir = mkdtempSync(join(tmpdir(), 'medic-own-'));
    writeFileSync(join(dir, 'etcd-pod.yaml.r-0000abcd'), 'kept aside');
    expect(look(STEPS['write-manifest'].hosts.layout({ ...write, params: { ...write.params, configAside: join(dir, 'etcd-pod.yaml.r-0000abcd') } }))).toBe('');
    rmSync(dir, { recursive: true });
    for (const c of [ocp4('etcd-member.yaml', '/etc/etcd-medic/kubeconfig'), { ...cluster, kubeconfig: '/etc/etcd-medic/kubeconfig' }]) {
      const o = quorum(c);
      if (!o.ok) throw new Error(o.reason);
      expect(o.run.steps.map((s) => s.kind)).not.toContain('force-redeployment');
    }
  });

  it('without a kubeconfig a 4.4+ restore still ends with the redeploy step, which ends the run with a warning giving the oc patch to run by hand', async () => {
    const c = ocp4('etcd-pod.yaml');
    const out = quorum(c);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.at(-1)!.kind).toBe('force-redeployment');
    const b = { id: '2026-11-22_030000', revision: 30, snapshotFile: 'snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z' } as BackupFacts;
    const restore = planRestore(inventory, c, survivor, state, { runId: 'r-0000abcd', backup: b, requestedBy: 'UALICE', channelId: 'C' }, now);
    if (!restore.ok) throw new Error(restore.reason);
    const step = stepOf(restore.run.steps.at(-1), 'force-redeployment');
    const result = await forceRedeployment({ cluster: c, log: createLogger('silent') }, step);
    expect(result.caveat).toContain('the etcd operator was not told to redeploy');
    expect(result.caveat).toContain(`oc patch etcd cluster -p='{"spec": {"forceRedeploymentReason": "recovery-r-0000abcd-'"$( date --rfc-3339=ns )"'"}}' --type=merge`);
  });
});
