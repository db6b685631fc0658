import { describe, expect, it } from 'vitest';
import { memberRow, threeMasters } from '../support/fixtures.js';
import { stepOf } from '../support/steps.js';
import { decideClick } from '../../src/approvals/decide.js';
import { decodeClick, encodeClick, renderRun } from '../../src/render/run-message.js';
import { blockLimitViolations } from '../../src/render/block-limits.js';
import { doneAndNotDone } from '../../src/runbook/engine.js';
import { gateHash, membershipFingerprint } from '../../src/runbook/hash.js';
import { planReplace } from '../../src/runbook/replace-plan.js';
import type { ObservedState, Run } from '../../src/runbook/types.js';
import type { MemberRow, StatusReport } from '../../src/status/assess.js';
import { parseInventory } from '../../src/config/load.js';

const { inventory, cluster } = threeMasters('{ roles: { approve: [UBOB, SONCALL], destroy: [UALICE] } }');

// Member 1 leads; the others answer with the same figures, or refuse connections.
const row = (i: number, up: boolean, over: Partial<MemberRow> = {}): MemberRow =>
  memberRow(i, up ? { raftIndex: 100, revision: 50, leader: '161' } : null, { isLeader: i === 1, ...over });
function report(members: MemberRow[], verdict: StatusReport['verdict'] = 'DEGRADED'): StatusReport {
  return { cluster: 'prod', at: new Date(), tookMs: 1, verdict, summary: '', next: '', voters: members.length, quorum: 2, healthyVoters: 2, tolerance: 0, clusterIdHex: '1', leaderHex: 'a1', members, warnings: [] };
}
const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 100, revision: 50, at: '2026-11-23T03:00:00.000Z' };
const req = (target: string, force = false) => ({ runId: 'r-0000abcd', target, force, requestedBy: 'UALICE', channelId: 'CINC' });
const now = new Date('2026-11-23T03:00:00Z');

describe('planReplace', () => {
  it('plans the vendor procedure for a failed member, in order, with the exact operations', () => {
    const out = planReplace(inventory, cluster, report([row(1, true), row(2, true), row(3, false)]), state, req('m3'), now);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.map((s) => [s.kind, s.destructive])).toEqual([
      ['snapshot', false],
      ['member-remove', true],
      ['stop-and-move-aside', true],
      ['member-add-learner', false],
      ['write-manifest', false],
      ['wait-caught-up', false],
      ['promote', false],
      ['verify', false],
      ['kube-check', false],
    ]);
    expect(out.run.steps[0]!.operation).toBe(
      'maintenance.snapshot() from m1 (https://10.0.0.1:2379) → backup 2026-11-23_030000 in /backups/prod (snapshot_2026-11-23_030000.db and static_kuberesources_2026-11-23_030000.tar.gz); verified by its sha256 trailer and etcdctl snapshot status',
    );
    expect(out.run.steps[1]!.operation).toBe('cluster.memberRemove(a3), as etcdctl member remove a3');
    expect(out.run.steps[2]!.operation).toBe(
      'on core@10.0.0.3:22: mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/etcd-medic-aside/etcd.yaml.r-0000abcd; wait until etcd is gone (nothing on 10.0.0.3:2379, 10.0.0.3:2380, no etcd process on /var/lib/etcd); mv /var/lib/etcd /var/lib/etcd.before-r-0000abcd',
    );
    expect(stepOf(out.run.steps[4], 'write-manifest').params.initialCluster).toBe('m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380');
    expect(out.run.steps[7]!.params).toEqual({ voters: 3, minRevision: 50, dnsNames: true });
    // Last, with etcd whole again: m3's Node in Kubernetes, its CSRs shown in the run's thread, approved by people.
    expect(out.run.steps[8]!.params).toEqual({ waitSeconds: cluster.kubeReadyWaitSeconds, node: 'm3' });
    expect(out.run.steps[8]!.title).toBe('Wait for node m3 Ready in Kubernetes, its CSRs shown here for approval');
  });

  it('finds the member by hex ID or host as well as by name', () => {
    const r = report([row(1, true), row(2, true), row(3, false)]);
    for (const ref of ['m3', 'a3', '10.0.0.3']) {
      const out = planReplace(inventory, cluster, r, state, req(ref), now);
      expect(out.ok && out.run.target).toBe('m3');
    }
  });

  it('refuses what the safety rules forbid, saying why', () => {
    const reason = (r: StatusReport, ref: string, force = false) => {
      const out = planReplace(inventory, cluster, r, state, req(ref, force), now);
      return out.ok ? 'planned' : out.reason;
    };
    expect(reason(report([row(1, true), row(2, false), row(3, false)], 'QUORUM_LOST'), 'm3')).toContain('no quorum');
    expect(reason(report([row(1, true), row(2, true), row(3, true)], 'HEALTHY'), 'm3')).toContain('is healthy');
    expect(reason(report([row(1, true), row(2, true), row(3, true)], 'HEALTHY'), 'm3', true)).toBe('planned');
    expect(reason(report([row(1, true), row(2, false)]), 'm2')).toContain('removing one from a cluster of two or fewer');
    // Five members, two down: removing a third would leave 2 healthy of 4, below 3.
    const five = [1, 2, 3, 4, 5].map((i) => row(i, i <= 3, i > 3 ? {} : {}));
    const inv5 = structuredClone(inventory);
    inv5.clusters[0]!.members.push({ ...inv5.clusters[0]!.members[0]!, name: 'm4', host: '10.0.0.4' }, { ...inv5.clusters[0]!.members[0]!, name: 'm5', host: '10.0.0.5' });
    const out5 = planReplace(inv5, inv5.clusters[0]!, report(five), state, req('m1', true), now);
    expect(out5.ok ? 'planned' : out5.reason).toContain('below the quorum of 3');
    expect(reason(report([row(1, true), row(2, true), row(3, false)]), 'm7')).toContain('no member "m7" in prod');
    const stranger = row(3, false, { name: 'm9', idHex: 'a9', peerURLs: ['https://10.0.0.9:2380'], clientURLs: ['https://10.0.0.9:2379'] });
    expect(reason(report([row(1, true), row(2, true), stranger]), 'm9')).toContain('not in the inventory');
  });

  it('plans no member remove for a member already gone from the list', () => {
    const out = planReplace(inventory, cluster, report([row(1, true), row(2, true)]), state, req('m3'), now);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.map((s) => s.kind)).not.toContain('member-remove');
    expect(out.run.steps.find((s) => s.kind === 'verify')!.params.voters).toBe(3);
  });
});

describe('approval decisions', () => {
  const planned = () => {
    const out = planReplace(inventory, cluster, report([row(1, true), row(2, true), row(3, false)]), state, req('m3'), now);
    if (!out.ok) throw new Error(out.reason);
    const run: Run = out.run;
    run.current = 1;
    run.status = 'awaiting_approval';
    run.records[1]!.status = 'awaiting_approval';
    run.gate = { step: 1, hash: gateHash(run, 1, state, 1), state, openedAt: now.toISOString(), expiresAt: new Date(now.getTime() + 900_000).toISOString(), round: 1 };
    return run;
  };
  const groups = async (id: string) => (id === 'SONCALL' ? ['UCAROL'] : []);
  const ask = (run: Run, user: string, decision: 'approve' | 'reject' = 'approve', at = now, channel = 'CINC') =>
    decideClick(run, { runId: run.runId, step: 1, hash: run.gate!.hash }, decision, { userId: user, channelId: channel }, inventory.workspace, groups, at);

  it('lets a second approver approve, by ID or through a user group', async () => {
    expect(await ask(planned(), 'UBOB')).toEqual({ ok: true });
    expect(await ask(planned(), 'UCAROL')).toEqual({ ok: true });
  });

  it('refuses the requester, strangers, late clicks and other channels', async () => {
    expect(await ask(planned(), 'UALICE')).toMatchObject({ ok: false, reason: expect.stringContaining('second person') });
    expect(await ask(planned(), 'UEVE')).toMatchObject({ ok: false, reason: expect.stringContaining('*approve* role') });
    expect(await ask(planned(), 'UBOB', 'approve', new Date(now.getTime() + 901_000))).toMatchObject({ ok: false, reopen: true });
    expect(await ask(planned(), 'UBOB', 'approve', now, 'COTHER')).toMatchObject({ ok: false, reason: expect.stringContaining('belongs to <#CINC>') });
    expect(await ask(planned(), 'UALICE', 'reject')).toEqual({ ok: true });
  });

  it('binds an approval to the state: a different membership gives a different gate', () => {
    const other: ObservedState = { ...state, members: [{ idHex: 'a1', name: 'm1', peerURLs: [], learner: false, started: true, reachable: false }] };
    expect(membershipFingerprint(other)).not.toBe(membershipFingerprint(state));
    const run = planned();
    expect(gateHash(run, 1, other, 1)).not.toBe(gateHash(run, 1, state, 1));
    expect(gateHash(run, 1, state, 2)).not.toBe(gateHash(run, 1, state, 1));
    // Leader and indexes move by themselves: they do not void an approval.
    expect(membershipFingerprint({ ...state, leaderHex: 'a2', raftIndex: 999 })).toBe(membershipFingerprint(state));
  });

  it('renders within Block Kit limits, with a danger button and a confirm dialog on the gate', () => {
    const msg = renderRun(planned());
    expect(blockLimitViolations(msg.blocks)).toEqual([]);
    const actions = msg.blocks.find((b) => b.type === 'actions') as { elements: { style?: string; confirm?: unknown; value: string }[] };
    expect(actions.elements[0]).toMatchObject({ style: 'danger', confirm: expect.any(Object) });
    expect(decodeClick(actions.elements[0]!.value)).toEqual({ runId: 'r-0000abcd', step: 1, hash: planned().gate!.hash });
    expect(decodeClick('{"r":"r-0000abcd","s":1,"h":"zz"}')).toBeNull();
    expect(decodeClick(encodeClick({ runId: 'x; rm -rf /', step: 1, hash: 'a'.repeat(64) }))).toBeNull();
  });

  it('says exactly what was done and what was not', () => {
    const run = planned();
    run.records[0]!.status = 'done';
    expect(doneAndNotDone(run)).toBe(
      'Done: 1. Take and verify a snapshot. Not done: 2. Remove m3 from the member list; 3. Stop etcd on m3 and move its data dir aside; 4. Add m3 back as a learner; 5. Start etcd on m3 with state "existing"; 6. Wait until m3 has caught up; 7. Promote m3 to voter; 8. Verify every member healthy and the revision intact; 9. Wait for node m3 Ready in Kubernetes, its CSRs shown here for approval.',
    );
  });
});

describe('planReplace: the member and its inventory host must be one machine', () => {
  it('refuses before anything runs when the peer URL points elsewhere, naming both', () => {
    // The fault: the inventory says m3 is 10.0.0.3, but the member list has m3 on 10.0.0.9.
    const moved = row(3, false, { peerURLs: ['https://10.0.0.9:2380'], clientURLs: ['https://10.0.0.9:2379'] });
    const out = planReplace(inventory, cluster, report([row(1, true), row(2, true), moved]), state, req('m3'), now);
    expect(out.ok).toBe(false);
    expect(!out.ok && out.reason).toBe(
      "m3's peer URL https://10.0.0.9:2380 points at 10.0.0.9, but the inventory puts m3 on 10.0.0.3 (SSH core@10.0.0.3:22): they may not be the same machine, so the bot would stop etcd and move a data dir on the wrong one. Correct clusters[].members[].host in the inventory (or the member's peer URL), then ask again. Nothing was changed.",
    );
  });

  it('plans when they agree, whatever the ports, and waits for etcd on those ports', () => {
    const odd = row(3, false, { peerURLs: ['https://10.0.0.3:12380'], clientURLs: ['https://10.0.0.3:12379'] });
    const out = planReplace(inventory, cluster, report([row(1, true), row(2, true), odd]), state, req('m3'), now);
    if (!out.ok) throw new Error(out.reason);
    const stop = out.run.steps.find((s) => s.kind === 'stop-and-move-aside')!;
    expect(stop.params.listen).toEqual(['10.0.0.3:2379', '10.0.0.3:12379', '10.0.0.3:12380']);
  });
});

describe('planReplace on OpenShift 3 masters (etcd.conf)', () => {
  const ocp = { ...cluster, platform: { kind: 'systemd', unit: 'etcd', confFile: '/etc/etcd/etcd.conf', dataDir: '/var/lib/etcd', pkiDir: '/etc/etcd', apiserverUnits: ['atomic-openshift-master-api'], masterConfig: '/etc/origin/master/master-config.yaml', flanneldConfig: '/etc/sysconfig/flanneld', kubeletCert: '/etc/origin/node/certificates/kubelet-client-current.pem', kubeletConfig: '/etc/origin/node/node.kubeconfig', kubeletBootstrapConfig: '/etc/origin/node/bootstrap.kubeconfig', kubeletUnit: 'atomic-openshift-node' } } as typeof cluster;

  it('refuses at planning a member name from the member list that etcd.conf cannot hold as written, before any step', () => {
    // Anyone who can write to etcd names members: a quote would swallow etcd.conf's next lines, `$(…)` reach the unit's shell.
    const hostile = row(2, true, { name: 'm2$(touch /tmp/x)' });
    const out = planReplace(inventory, ocp, report([row(1, true), hostile, row(3, false)]), state, req('m3'), now);
    expect(out.ok).toBe(false);
    expect(!out.ok && out.reason).toMatch(/^--initial-cluster would be "m1=https:\/\/10\.0\.0\.1:2380,m2\$\(touch \/tmp\/x\)=https:\/\/10\.0\.0\.2:2380,m3=https:\/\/10\.0\.0\.3:2380", which cannot go into etcd\.conf: systemd or the unit's shell would not read it as written/);
    expect(!out.ok && out.reason).toContain('Nothing was changed.');
    // The same member list is fine for a static pod manifest, which the yaml library quotes.
    expect(planReplace(inventory, cluster, report([row(1, true), hostile, row(3, false)]), state, req('m3'), now).ok).toBe(true);
  });

  it('plans the stop and start the systemd way', () => {
    const out = planReplace(inventory, ocp, report([row(1, true), row(2, true), row(3, false)]), state, req('m3'), now);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.find((s) => s.kind === 'stop-and-move-aside')!.operation).toContain('mv /etc/etcd/etcd.conf /etc/etcd-medic-aside/etcd.conf.r-0000abcd; systemctl disable etcd; systemctl mask --runtime etcd; systemctl stop etcd');
    expect(out.run.steps.find((s) => s.kind === 'write-manifest')!.operation).toContain('systemctl unmask --runtime etcd; systemctl enable etcd; systemctl start etcd on an empty /var/lib/etcd');
  });

  it('on a statefulset cluster plans the GKE on-prem procedure through the admin cluster API alone, the PDB and the state put back at the end', () => {
    const inv = parseInventory(
      `workspace: { roles: { approve: [UBOB], destroy: [UALICE] } }
backups: { dir: /backups }
clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"] }
    platform: { kind: statefulset, namespace: user1 }
    kubeconfig: /admin.conf
    members:
${[1, 2, 3].map((i) => `      - { name: m${i}, host: 10.0.0.${i} }`).join('\n')}
`,
      't.yaml',
    );
    const out = planReplace(inv, inv.clusters[0]!, report([row(1, true), row(2, true), row(3, false)]), state, req('m3'), now);
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.steps.map((s) => [s.kind, s.destructive])).toEqual([
      ['workload-check', false],
      ['pdb-delete', true],
      ['snapshot', false],
      ['sts-initial-state', false],
      ['drain', false],
      ['member-remove', true],
      ['wipe-claim', true],
      ['member-add-learner', false],
      ['uncordon', false],
      ['wait-caught-up', false],
      ['promote', false],
      ['verify', false],
      ['sts-initial-state', false],
      ['pdb-restore', false],
    ]);
    const ops = out.run.steps.map((s) => s.operation);
    expect(ops[1]).toBe('kubectl -n user1 get pdb kube-etcd-pdb -o json > /backups/prod/pdb-kube-etcd-pdb.r-0000abcd.json; kubectl -n user1 delete pdb kube-etcd-pdb (made again at the end, and by a run that stops before it)');
    expect(ops[3]).toContain('kubectl -n user1 patch statefulset kube-etcd --type=json: test and replace the container kube-etcd\'s --initial-cluster-state=new with --initial-cluster-state=existing');
    expect(ops[4]).toBe('kubectl drain <node of claim data-m3> --ignore-daemonsets --delete-emptydir-data --timeout=300s: cordon, evict every pod bound there (a PodDisruptionBudget may hold one back), wait until they are gone');
    expect(ops[6]).toContain('kubectl -n user1 create pod etcd-utility-m3 (busybox:1.36, on the claim\'s node, claim data-m3 at /var/lib/etcd) running: mv /var/lib/etcd/* /var/lib/etcd/before-r-0000abcd/');
    expect(ops[12]).toContain('--initial-cluster-state=existing with --initial-cluster-state=new');
    expect(ops[13]).toBe('kubectl -n user1 create -f /backups/prod/pdb-kube-etcd-pdb.r-0000abcd.json (the object the run saved, without its server fields)');
    // No step of this plan reaches a host over SSH.
    expect(out.run.steps.filter((s) => s.host)).toEqual([]);
  });

  it('keeps SSH required on the platforms that reach hosts, and optional on a statefulset cluster', () => {
    const inv = (platform: string) => `clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379"] }
    platform: ${platform}
    members:
      - { name: kube-etcd-0, host: 10.0.0.1 }
`;
    expect(parseInventory(inv('{ kind: statefulset, namespace: user1 }'), 't.yaml').clusters[0]!.platform).toMatchObject({ kind: 'statefulset', statefulSet: 'kube-etcd', pdb: 'kube-etcd-pdb', dataMountPath: '/var/lib/etcd' });
    expect(() => parseInventory(inv('{ kind: kubeadm }'), 't.yaml')).toThrow(/clusters\[0\]\.members\[0\]\.ssh.*required on a kubeadm cluster/s);
  });
});
