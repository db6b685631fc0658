import { describe, expect, it } from 'vitest';
import { memberRow, threeMasters } from '../support/fixtures.js';
import type { BackupFacts } from '../../src/backup/store.js';
import { memberPlace, platformOf } from '../../src/platform/index.js';
import { canonical } from '../../src/runbook/hash.js';
import { planReplace } from '../../src/runbook/replace-plan.js';
import { planRestore } from '../../src/runbook/restore-plan.js';
import { planDriftFix } from '../../src/runbook/drift-fix-plan.js';
import { planKubeletsRenew } from '../../src/runbook/kubelets-plan.js';
import { planDefrag } from '../../src/runbook/defrag-plan.js';
import type { ClusterConfig } from '../../src/config/schema.js';
import { referenceDrift } from '../../src/status/references.js';
import type { ReferenceLook } from '../../src/worker/references.js';
import { apiserverPlaces, hostPlaces, planRestoreQuorum } from '../../src/runbook/restore-quorum-plan.js';
import type { ObservedState, Run, StepKind, StepOf, StepSpec } from '../../src/runbook/types.js';
import type { StatusReport } from '../../src/status/assess.js';
import { executeStep, STEP_KINDS, STEPS, stepProblem, unreadableFrom, type StepContext } from '../../src/steps/index.js';
import { hostNeeds } from '../../src/worker/host-readiness.js';

const { inventory, cluster } = threeMasters('{ roles: { approve: [UBOB] } }');
const [m1, m2, m3] = cluster.members as [(typeof cluster.members)[0], (typeof cluster.members)[0], (typeof cluster.members)[0]];
const runId = 'r-0000abcd';
const now = new Date('2026-11-23T03:00:00Z');
const place = (m: typeof m1) => hostPlaces(cluster, m, runId);
const backup = { id: '2026-11-22_030000', cluster: 'prod', revision: 30, snapshotFile: '/backups/prod/snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z', bytes: 10 } as BackupFacts;
const store = '/backups/prod';
const peer = 'https://10.0.0.3:2380';

/** A member of etcd as a StatefulSet in an admin cluster (GKE on-prem), as its profile places it. */
const stsCluster = { ...cluster, platform: { kind: 'statefulset', namespace: 'user1', statefulSet: 'kube-etcd', container: 'kube-etcd', pdb: 'kube-etcd-pdb', claimTemplate: 'data', dataMountPath: '/var/lib/etcd', utilityImage: 'busybox:1.36', drainTimeoutSeconds: 300 } } as ClusterConfig;
const sts = platformOf(stsCluster).workload!({ ...m3, name: 'kube-etcd-2' });

/** Every kind, each spec variant a planner uses, from typed inputs. A kind missing here does not compile. */
const SAMPLES: { [K in StepKind]: () => StepOf<K>[] } = {
  snapshot: () => [
    STEPS.snapshot.spec({ runbook: 'replace', from: 'm1', fromUrl: 'https://10.0.0.1:2379', backupId: 'b1', store, forced: 'm3' }),
    STEPS.snapshot.spec({ runbook: 'restore', from: 'm1', backupId: 'b1' }),
    STEPS.snapshot.spec({ runbook: 'restore-quorum', from: 'm1', fromUrl: 'https://10.0.0.1:2379', backupId: 'b1', store }),
  ],
  'member-remove': () => [STEPS['member-remove'].spec({ idHex: 'a3', name: 'm3', peerUrl: peer })],
  'stop-and-move-aside': () => [STEPS['stop-and-move-aside'].spec({ cluster, member: 'm3', place: memberPlace(cluster, m3, runId), clientHost: '10.0.0.3', listen: ['10.0.0.3:2379', '10.0.0.3:2380'] })],
  'member-add-learner': () => [STEPS['member-add-learner'].spec({ name: 'm3', peerUrl: peer, etcdctl: true }), STEPS['member-add-learner'].spec({ name: 'm3', peerUrl: peer, etcdctl: false })],
  'write-manifest': () => [
    STEPS['write-manifest'].spec({ runbook: 'replace', cluster, member: m3, place: memberPlace(cluster, m3, runId), peerUrl: peer, initialCluster: `m1=https://10.0.0.1:2380,m3=${peer}` }),
    STEPS['write-manifest'].spec({ runbook: 'restore-quorum', cluster, member: m3, place: place(m3), peerUrl: peer, initialCluster: `m1=https://10.0.0.1:2380,m3=${peer}`, template: { member: m1, place: place(m1) } }),
  ],
  'wait-caught-up': () => [STEPS['wait-caught-up'].spec({ runbook: 'replace', cluster, name: 'm3', peerUrl: peer }), STEPS['wait-caught-up'].spec({ runbook: 'restore-quorum', cluster, name: 'm3', peerUrl: peer })],
  promote: () => [STEPS.promote.spec({ name: 'm3', peerUrl: peer })],
  verify: () => (['replace', 'restore', 'restore-quorum'] as const).map((runbook) => STEPS.verify.spec({ runbook, voters: 3, minRevision: 50 })),
  fence: () => [
    STEPS.fence.spec({ runbook: 'restore', cluster, places: [m1, m2, m3].map(place) }),
    STEPS.fence.spec({ runbook: 'restore-quorum', cluster, places: [m2, m3].map(place), unconfirmed: [{ name: 'm3', error: 'no SSH handshake within 5000 ms' }] }),
  ],
  'force-new-cluster': () => [STEPS['force-new-cluster'].spec({ cluster, place: place(m1), endpoint: 'https://10.0.0.1:2379' })],
  'verify-backup': () => [STEPS['verify-backup'].spec({ backup })],
  'restore-snapshot': () => [
    STEPS['restore-snapshot'].spec({ runbook: 'restore', cluster, backup, place: place(m2), token: `prod-${runId}`, endpoint: 'https://10.0.0.2:2379', initialCluster: 'm1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380' }),
    STEPS['restore-snapshot'].spec({ runbook: 'restore-quorum', cluster, backup, place: place(m1), token: `prod-${runId}`, endpoint: 'https://10.0.0.1:2379' }),
  ],
  apiservers: () => {
    const places = apiserverPlaces(cluster, [m1, m2, m3], runId);
    return [STEPS.apiservers.spec({ cluster, action: 'stop', places }), STEPS.apiservers.spec({ cluster, action: 'start', places }), STEPS.apiservers.spec({ cluster, action: 'stop', places: places.slice(0, 2), reachableOnly: true })];
  },
  'kube-check': () => [STEPS['kube-check'].spec({ cluster }), STEPS['kube-check'].spec({ cluster, node: 'm3' })],
  'rewrite-references': () => [
    STEPS['rewrite-references'].spec({ cluster, member: 'm2', asideDir: '/etc/etcd-medic-aside', files: [{ path: '/etc/etcd/etcd.conf', what: 'etcd.conf ETCD_INITIAL_CLUSTER', from: ['m1=https://10.0.0.1:2380'], to: ['m1=https://10.0.0.1:2380', `m3=${peer}`] }] }),
  ],
  'kubelet-rebootstrap': () => [STEPS['kubelet-rebootstrap'].spec({ cluster, place: platformOf(cluster).kubelet(m2, runId) })],
  'kubelet-csrs': () => [STEPS['kubelet-csrs'].spec({ cluster, nodes: ['m1', 'm2'] })],
  'issue-certs': () => {
    const pki = platformOf(cluster).pki(m3);
    return [STEPS['issue-certs'].spec({ cluster, member: m3, signer: m1, runId, asideDir: place(m3).asideDir, caCert: pki.caCert, signerCa: { cert: pki.caCert, key: pki.caKey }, certs: pki.certs, why: 'no certificates', caSha256: `${'AB:'.repeat(31)}CD` })];
  },
  'workload-check': () => [STEPS['workload-check'].spec({ place: sts })],
  'pdb-delete': () => [STEPS['pdb-delete'].spec({ place: sts, saveDir: store, runId })],
  'sts-initial-state': () => [STEPS['sts-initial-state'].spec({ place: sts, value: 'existing' }), STEPS['sts-initial-state'].spec({ place: sts, value: 'new' })],
  drain: () => [STEPS.drain.spec({ place: sts })],
  'wipe-claim': () => [STEPS['wipe-claim'].spec({ place: sts, peerUrl: peer, runId })],
  uncordon: () => [STEPS.uncordon.spec({ place: sts })],
  'pdb-restore': () => [STEPS['pdb-restore'].spec({ place: sts, saveDir: store, runId })],
  'force-redeployment': () => [STEPS['force-redeployment'].spec({ cluster, runId, resource: { group: 'operator.openshift.io', version: 'v1', plural: 'etcds', name: 'cluster' } })],
  compact: () => [STEPS.compact.spec({ revision: 50, via: { name: 'm1', url: 'https://10.0.0.1:2379' } })],
  'defrag-member': () => [
    STEPS['defrag-member'].spec({ name: 'm2', idHex: 'a2', url: 'https://10.0.0.2:2379', dbSize: 8_000_000, role: 'follower', before: [], after: ['m3', 'm1'], timeoutSeconds: 300 }),
    STEPS['defrag-member'].spec({ name: 'm1', idHex: 'a1', url: 'https://10.0.0.1:2379', dbSize: 8_000_000, role: 'leader', before: ['m2', 'm3'], after: [], timeoutSeconds: 300 }),
  ],
  'alarm-disarm': () => [STEPS['alarm-disarm'].spec({ quotaBytes: 2 ** 31, raised: ['m1'] }), STEPS['alarm-disarm'].spec({ quotaBytes: 2 ** 31, raised: [] })],
  'write-check': () => [STEPS['write-check'].spec({ runId, voters: 3 })],
};

/** The same masters as OpenShift 4.4+ ones (etcd-pod.yaml, written by the etcd operator), with a kubeconfig. */
const ocp44 = {
  ...cluster,
  kubeconfig: '/etc/etcd-medic/kubeconfig',
  platform: { kind: 'openshift4', manifestsDir: '/etc/kubernetes/manifests', manifestFile: 'etcd-pod.yaml', dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd', controlPlaneManifests: ['kube-scheduler-pod.yaml', 'kube-controller-manager-pod.yaml', 'kube-apiserver-pod.yaml'], kubeletCert: '/var/lib/kubelet/pki/kubelet-client-current.pem', kubeletConfig: '/var/lib/kubelet/kubeconfig', kubeletBootstrapConfig: '/etc/kubernetes/kubeconfig', kubeletUnit: 'kubelet' },
} as ClusterConfig;

/** The same masters as OpenShift 3 ones (etcd a systemd unit), one of whose etcd.conf misses a member. */
const ocp = { ...cluster, platform: { kind: 'systemd', unit: 'etcd', confFile: '/etc/etcd/etcd.conf', dataDir: '/var/lib/etcd', pkiDir: '/etc/etcd', apiserverUnits: ['atomic-openshift-master-api'], masterConfig: '/etc/origin/master/master-config.yaml', flanneldConfig: '/etc/sysconfig/flanneld', kubeletCert: '/etc/origin/node/certificates/kubelet-client-current.pem', kubeletConfig: '/etc/origin/node/node.kubeconfig', kubeletBootstrapConfig: '/etc/origin/node/bootstrap.kubeconfig', kubeletUnit: 'atomic-openshift-node' } } as ClusterConfig;
const ocpDrift = ((): ReferenceLook => {
  const ref = platformOf(ocp).references(m2)[1]!;
  const entries = ['m1=https://10.0.0.1:2380', 'm2=https://10.0.0.2:2380'];
  const members = [m1, m2, m3].map((m, i) => ({ name: m.name, peerURLs: [`https://10.0.0.${i + 1}:2380`], clientURLs: [`https://10.0.0.${i + 1}:2379`] }));
  return { member: 'm2', host: m2.host, ref, state: 'drift', entries, drift: referenceDrift(ref.names, entries, members) };
})();

/** What Redis gives back: runs are stored as JSON. */
const throughRedis = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('the step registry', () => {
  it('holds one definition for every kind of step, under its own kind', () => {
    expect([...STEP_KINDS].sort()).toEqual(Object.keys(SAMPLES).sort());
    expect(STEP_KINDS).toHaveLength(30);
    for (const kind of STEP_KINDS) expect(STEPS[kind].kind).toBe(kind);
  });

  it("builds steps whose params survive a JSON round trip unchanged, hash the same after it, and read back as the kind's params", () => {
    for (const kind of STEP_KINDS) {
      const steps: StepSpec[] = SAMPLES[kind]();
      expect(steps.length).toBeGreaterThan(0);
      for (const step of steps) {
        expect(step.kind).toBe(kind);
        expect(throughRedis(step)).toStrictEqual(step);
        expect(canonical(throughRedis(step))).toBe(canonical(step));
        expect(stepProblem(throughRedis(step))).toBeNull();
      }
    }
  });

  it('plans of every runbook read back whole after a JSON round trip', () => {
    const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 100, revision: 50, at: now.toISOString() };
    const report = (members: StatusReport['members'], verdict: StatusReport['verdict']): StatusReport => ({ cluster: 'prod', at: now, tookMs: 1, verdict, summary: '', next: '', voters: 3, quorum: 2, healthyVoters: 2, tolerance: 0, clusterIdHex: '1', leaderHex: 'a1', members, warnings: [] });
    const up = (i: number) => memberRow(i, { raftIndex: 100, revision: 50, leader: '161' }, { isLeader: i === 1 });
    const alone = report([memberRow(1, { raftIndex: 90, revision: 40, leader: '0' }), memberRow(2, null), memberRow(3, null)], 'QUORUM_LOST');
    const req = { runId, requestedBy: 'UALICE', channelId: 'C' };
    const down = (name: string) => ({ name, reachable: true as const, listening: false, hasConfig: false, hasData: false, offlineRevision: null });
    // m3's host rebuilt: no manifest, no certificates; m1 has the CA key and a manifest to lend.
    const rebuilt = { target: { name: 'm3', hasConfig: false, pki: { ca: 'no ca.crt', certs: { peer: 'no peer.crt', server: 'no server.crt', 'healthcheck-client': 'none' }, caSha256: `${'AB:'.repeat(31)}CD` } }, peers: [{ name: 'm1', hasConfig: true, hasCaCert: true, hasCaKey: true, caSha256: `${'AB:'.repeat(31)}CD`, roles: ['peer', 'server'] }] };
    const plans = [
      planReplace(inventory, cluster, report([up(1), up(2), memberRow(3, null)], 'DEGRADED'), state, { ...req, target: 'm3', force: false }, now),
      planReplace(inventory, cluster, report([up(1), up(2), memberRow(3, null)], 'DEGRADED'), state, { ...req, target: 'm3', force: false }, now, rebuilt),
      planRestoreQuorum(inventory, cluster, alone, state, [down('m2'), { name: 'm3', reachable: false, error: 'timeout' }], req, now),
      planRestoreQuorum(inventory, cluster, alone, state, [down('m2'), down('m3')], { ...req, snapshot: backup }, now),
      planRestore(inventory, cluster, alone, state, { ...req, backup }, now),
      planRestore(inventory, ocp44, alone, state, { ...req, backup }, now),
      planDriftFix(inventory, ocp, state, [ocpDrift], req, now),
      planKubeletsRenew(inventory, { ...cluster, kubeconfig: '/etc/etcd-medic/kubeconfig' }, state, { ...req, nodes: ['m1'] }, now),
      planReplace(inventory, stsCluster, report([up(1), up(2), memberRow(3, null)], 'DEGRADED'), state, { ...req, target: 'm3', force: false }, now),
      planDefrag(inventory, cluster, report([up(1), up(2), up(3)], 'HEALTHY'), state, req, now),
    ];
    const kinds = new Set<string>();
    for (const out of plans) {
      if (!out.ok) throw new Error(out.reason);
      const stored = throughRedis(out.run);
      expect(stored.steps).toStrictEqual(out.run.steps);
      expect(unreadableFrom(stored.steps, 0)).toBeNull();
      for (const s of stored.steps) kinds.add(s.kind);
    }
    expect([...kinds].sort()).toEqual([...STEP_KINDS].sort());
  });
});

describe('a stored run planned by an older version (lists as JSON text)', () => {
  const fenced = [m2, m3].map(place);
  const old = { kind: 'fence', title: 'Fence m2, m3', destructive: true, operation: 'o', params: { hosts: JSON.stringify(fenced), unconfirmed: '["m3"]' } } as unknown as StepSpec;
  const verify = STEPS.verify.spec({ runbook: 'restore-quorum', voters: 3, minRevision: 1 });

  it('is refused before a step acts, naming the step and the parameter, never read as something else', async () => {
    expect(stepProblem(old)).toMatch(/^its parameter "hosts" is not what this version reads: expected array, received string/);
    expect(unreadableFrom([old, verify], 0)).toMatch(/^this step was planned by an older version of the bot: plan it again \(its parameter "hosts" .*\)\. Nothing was done by this step\.$/);
    expect(unreadableFrom([verify, old], 0)).toMatch(/^step 2 \(Fence m2, m3\), later in this run, was planned by an older version of the bot: plan it again/);
    // Steps whose params kept their shape still read: nothing is refused that this version reads right.
    expect(unreadableFrom([old, verify], 1)).toBeNull();
    const run = { steps: [old, verify] } as Run;
    // The context is not looked at: the refusal comes before the step's executor.
    await expect(executeStep({ run, index: 0 } as StepContext, old)).rejects.toThrow('planned by an older version of the bot: plan it again');
  });

  it('names no host in the readiness check (its executor refuses it instead)', () => {
    expect(hostNeeds([old, verify]).uses.size).toBe(0);
    expect(hostNeeds([old]).mayBeDown.size).toBe(0);
    const fresh = STEPS.fence.spec({ runbook: 'restore-quorum', cluster, places: fenced, unconfirmed: [{ name: 'm3' }] });
    expect([...hostNeeds([fresh], 0, platformOf(cluster).tools).uses.keys()]).toEqual(['m2']);
    expect([...hostNeeds([fresh]).mayBeDown]).toEqual(['m3']);
  });
});
