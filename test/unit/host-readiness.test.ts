import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memberRow, threeMasters } from '../support/fixtures.js';
import type { BackupFacts } from '../../src/backup/store.js';
import { planReplace } from '../../src/runbook/replace-plan.js';
import { planRestore } from '../../src/runbook/restore-plan.js';
import { planRestoreQuorum } from '../../src/runbook/restore-quorum-plan.js';
import type { ObservedState, StepSpec } from '../../src/runbook/types.js';
import type { StatusReport } from '../../src/status/assess.js';
import { checkHosts, hostNeeds, hostUses, judge, lookScript, rankingNeeds, versionOf, type HostLook } from '../../src/worker/host-readiness.js';

const { inventory, cluster } = threeMasters('{ roles: { approve: [UBOB] } }');
const now = new Date('2026-11-23T03:00:00Z');
const state: ObservedState = { members: [], leaderHex: null, raftIndex: 100, revision: 50, at: now.toISOString() };
const report = (verdict: StatusReport['verdict'], up: boolean[], leader: string): StatusReport => ({
  cluster: 'prod', at: now, tookMs: 1, verdict, summary: '', next: '', voters: 3, quorum: 2, healthyVoters: up.filter(Boolean).length, tolerance: 0, clusterIdHex: '1', leaderHex: null, warnings: [],
  members: up.map((u, i) => memberRow(i + 1, u ? { raftIndex: 100, revision: 50, leader } : null, { isLeader: u && i === 0 })),
});
const backup = { id: '2026-11-22_030000', revision: 30, snapshotFile: 'snapshot_2026-11-22_030000.db', sha256: 'f'.repeat(64), takenAt: '2026-11-22T03:00:00Z' } as BackupFacts;
const m = (name: string) => cluster.members.find((x) => x.name === name)!;
/** A restore of a backup on member `name` as a plan holds it; only its title and member matter here. */
const restoreOn = (name: string, title: string): StepSpec => ({
  kind: 'restore-snapshot',
  title,
  destructive: false,
  operation: '',
  params: { name, config: '/c', configAside: '/a/c.r', asideDir: '/a', dataDir: '/d', dataAside: '/d.r', clientHost: name, peerUrl: `https://${name}:2380`, listen: [], backupId: 'b', token: 't', endpoint: `https://${name}:2379` },
});
const summary = (steps: StepSpec[], from = 0) => Object.fromEntries([...hostNeeds(steps, from).uses].map(([n, us]) => [n, us.map((u) => `${u.step! + 1}:${[...new Set(u.tools)].sort().join(',')}`)]));
const ok = (found: string[], versions: Extract<HostLook, { reachable: true }>['versions'] = {}): HostLook => ({ reachable: true, found: Object.fromEntries(found.map((t) => [t, true])), versions });

function replacePlan() {
  const out = planReplace(inventory, cluster, report('DEGRADED', [true, true, false], '161'), state, { runId: 'r-0000abcd', target: 'm3', force: false, requestedBy: 'UALICE', channelId: 'CINC' }, now);
  if (!out.ok) throw new Error(out.reason);
  return out.run;
}

describe('which hosts a run touches over SSH, and which tools each needs there', () => {
  it('replace: the failed member only (its stop and its start); the snapshot and the etcd API steps touch no host', () => {
    const run = replacePlan();
    expect(summary(run.steps)).toEqual({ m3: ['3:bash,cat,flock,grep,mkdir,mv,readlink,sed,seq,sleep,timeout,tr', '5:bash,cat,cut,flock,ls,mkdir,mv,rm,sha256sum,sleep,wc'] });
    // Right before member remove (step 2): the stop on m3 is still ahead, so m3 is asked about.
    expect(Object.keys(summary(run.steps, 1))).toEqual(['m3']);
    // After its start (step 5) nothing ahead touches a host.
    expect(summary(run.steps, 5)).toEqual({});
  });

  it('restore: every master for kube-apiserver, the fence and the restore, which needs etcdctl', () => {
    const out = planRestore(inventory, cluster, report('QUORUM_LOST', [true, false, false], '0'), state, { runId: 'r-0000abcd', backup, requestedBy: 'UALICE', channelId: 'CINC' }, now);
    if (!out.ok) throw new Error(out.reason);
    const s = summary(out.run.steps);
    expect(Object.keys(s).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(s.m2).toEqual(['3:bash,flock,mkdir,mv,sleep', '4:bash,cat,flock,grep,mkdir,mv,readlink,sed,seq,sleep,timeout,tr', '6:bash,cat,cut,date,etcdctl,flock,grep,mkdir,mv,readlink,rm,sed,seq,sha256sum,sleep,tail,timeout,touch,tr,wc', '9:bash,flock,mkdir,mv,sleep']);
    const restore = hostUses(out.run.steps[5]!, 5)[0]!;
    expect(restore.how).toEqual({ etcdctl: 'etcdctl snapshot restore' });
  });

  it('restore-quorum --snapshot: the survivor needs etcdctl; hosts the approver confirms down are not asked to answer', () => {
    const hosts = [{ name: 'm2', reachable: false as const, error: 'connect ECONNREFUSED' }, { name: 'm3', reachable: true as const, listening: false, hasConfig: true, hasData: true, offlineRevision: 40 }];
    const out = planRestoreQuorum(inventory, cluster, report('QUORUM_LOST', [true, false, false], '0'), state, hosts, { runId: 'r-0000abcd', snapshot: backup, requestedBy: 'UALICE', channelId: 'CINC' }, now);
    if (!out.ok) throw new Error(out.reason);
    const needs = hostNeeds(out.run.steps);
    expect([...needs.mayBeDown]).toEqual(['m2']);
    expect(summary(out.run.steps)).toEqual({
      // kube-apiserver stopped (step 2) and started (step 14) on the masters that answer; m2 is confirmed down.
      m3: ['2:bash,flock,mkdir,mv,sleep', '3:bash,cat,flock,grep,mkdir,mv,readlink,sed,seq,sleep,timeout,tr', '10:bash,cat,cut,flock,ls,mkdir,mv,rm,sha256sum,sleep,wc', '14:bash,flock,mkdir,mv,sleep'],
      m1: ['2:bash,flock,mkdir,mv,sleep', '4:bash,cat,cut,date,etcdctl,flock,grep,mkdir,mv,readlink,rm,sed,seq,sha256sum,sleep,tail,timeout,touch,tr,wc', '6:bash,cat,cut,sha256sum,wc', '10:bash,cat,cut,sha256sum,wc', '14:bash,flock,mkdir,mv,sleep'],
      m2: ['6:bash,cat,cut,flock,ls,mkdir,mv,rm,sha256sum,sleep,wc'],
    });
  });
});

describe('judging one host', () => {
  const run = replacePlan();
  const uses = hostNeeds(run.steps, 1).uses.get('m3')!;

  it('is ready when it answers and has every tool', () => {
    expect(judge(m('m3'), uses, ok(['bash', 'mkdir', 'mv', 'seq', 'sleep', 'cat', 'ls']), false)).toEqual({ member: 'm3', host: '10.0.0.3', ok: true, reasons: [] });
  });

  it('names a changed host key with both keys, which steps need the host, and how to fix it', () => {
    const r = judge(m('m3'), uses, { reachable: false, hostKey: { pinned: 'SHA256:old', seen: 'SHA256:new' }, error: 'x' }, false);
    expect(r.ok).toBe(false);
    expect(r.reasons).toEqual([
      'm3 (10.0.0.3): host key changed: the host shows SHA256:new, the inventory pins SHA256:old. The bot does not connect to it (a rebuilt host, or someone in between), and step 3 (Stop etcd on m3 and move its data dir aside), step 5 (Start etcd on m3 with state "existing") run there. If the host was rebuilt, check its key on the console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and put it in the inventory\'s ssh.hostKeyFingerprint for m3.',
    ]);
    // A changed key is never excused as "down": the host answers, as someone else.
    expect(judge(m('m3'), uses, { reachable: false, hostKey: { pinned: 'a', seen: 'b' }, error: 'x' }, true).ok).toBe(false);
  });

  it('names an unreachable host, unless the plan counts on it being down', () => {
    const look: HostLook = { reachable: false, hostKey: null, error: 'core@10.0.0.3:22: no SSH handshake within 5000 ms' };
    expect(judge(m('m3'), uses, look, false).reasons[0]).toBe(
      'm3 (10.0.0.3) cannot be reached over SSH (core@10.0.0.3:22: no SSH handshake within 5000 ms), and step 3 (Stop etcd on m3 and move its data dir aside), step 5 (Start etcd on m3 with state "existing") run there. Bring its sshd back (or fix the inventory\'s ssh settings for m3).',
    );
    expect(judge(m('m3'), uses, look, true).ok).toBe(true);
  });

  it('names a missing tool, the step that runs it and the package that has it', () => {
    const restore = restoreOn('m2', 'Restore backup b on m2');
    const u = hostUses(restore, 4);
    const found = ok(['bash', 'mkdir', 'mv', 'seq', 'sleep', 'cat', 'touch', 'tail']);
    (found as { found: Record<string, boolean> }).found.etcdctl = false;
    expect(judge(m('m2'), u, found, false).reasons).toEqual([
      'etcdctl not found on m2 (10.0.0.2): it is not on the PATH of core over SSH, and step 5 (Restore backup b on m2) runs `etcdctl snapshot restore` there. Install etcd-client on m2.',
    ]);
    const noSeq = ok(['bash', 'mkdir', 'mv', 'sleep', 'cat', 'ls']);
    (noSeq as { found: Record<string, boolean> }).found.seq = false;
    expect(judge(m('m3'), uses, noSeq, false).reasons).toEqual(['seq not found on m3 (10.0.0.3): it is not on the PATH of core over SSH, and step 3 (Stop etcd on m3 and move its data dir aside) runs `seq` there. Install coreutils on m3.']);
  });

  it('reads the etcdctl version: 3.6 has no snapshot restore any more, 3.4 and 3.5 do', () => {
    const u = hostUses(restoreOn('m1', 'Restore'), 2);
    const all = ['bash', 'mkdir', 'mv', 'seq', 'sleep', 'cat', 'touch', 'tail', 'etcdctl'];
    expect(versionOf('etcdctl version: 3.4.23')).toEqual([3, 4]);
    expect(judge(m('m1'), u, ok(all, { etcdctl: 'etcdctl version: 3.4.23' }), false).ok).toBe(true);
    expect(judge(m('m1'), u, ok(all, { etcdctl: 'etcdctl version: 3.5.17' }), false).ok).toBe(true);
    expect(judge(m('m1'), u, ok(all, { etcdctl: 'etcdctl version: 3.6.0' }), false).reasons).toEqual([
      'etcdctl 3.6 on m1 (10.0.0.1) has no `snapshot restore` or `snapshot status` any more (etcd 3.6 moved them to etcdutl): step 3 (Restore) runs `etcdctl snapshot restore` there. Put an etcdctl 3.5 or older on m1\'s PATH.',
    ]);
  });

  it('asks for flock (the member lock) on a host whose scripts change it, naming util-linux', () => {
    const noFlock = ok(['bash', 'mkdir', 'mv', 'seq', 'sleep', 'cat', 'ls']);
    (noFlock as { found: Record<string, boolean> }).found.flock = false;
    expect(judge(m('m3'), uses, noFlock, false).reasons).toEqual([
      'flock not found on m3 (10.0.0.3): it is not on the PATH of core over SSH, and step 3 (Stop etcd on m3 and move its data dir aside) runs `flock` there. Install util-linux on m3.',
    ]);
  });

  it('asks for etcdctl where the survivor of a lost quorum is chosen by the revision of a stopped database', () => {
    const needs = rankingNeeds(['m2']);
    const look = ok(['bash', 'timeout']);
    (look as { found: Record<string, boolean> }).found.etcdctl = false;
    expect(judge(m('m2'), needs.uses.get('m2')!, look, false).reasons).toEqual([
      "etcdctl not found on m2 (10.0.0.2): it is not on the PATH of core over SSH, and choosing the survivor (reading the revision of m2's stopped database) runs `etcdctl snapshot status` there. Install etcd-client on m2.",
    ]);
  });
});

describe('looking at hosts', () => {
  it('looks at each host once, at most `parallel` at a time, and keeps the inventory order', async () => {
    const restore = planRestore(inventory, cluster, report('QUORUM_LOST', [true, false, false], '0'), state, { runId: 'r-0000abcd', backup, requestedBy: 'UALICE', channelId: 'CINC' }, now);
    if (!restore.ok) throw new Error(restore.reason);
    let active = 0;
    let most = 0;
    const seen: string[] = [];
    const results = await checkHosts(cluster, hostNeeds(restore.run.steps), {
      parallel: 2,
      look: async (mm, tools) => {
        seen.push(mm.name);
        most = Math.max(most, ++active);
        await new Promise((r) => setTimeout(r, 20));
        active--;
        return mm.name === 'm2' ? { reachable: false, hostKey: null, error: 'refused' } : ok(tools);
      },
    });
    expect(seen.sort()).toEqual(['m1', 'm2', 'm3']);
    expect(most).toBe(2);
    expect(results.map((r) => [r.member, r.ok])).toEqual([['m1', true], ['m2', false], ['m3', true]].sort());
  });

  it('the probe script finds tools on the PATH with bash builtins only, and reads the etcdctl version', () => {
    const dir = mkdtempSync(join(tmpdir(), 'readiness-'));
    try {
      // A PATH with bash and mv but no etcdctl, seq or head: what a host without etcd-client looks like.
      for (const t of ['bash', 'mv']) symlinkSync(`/usr/bin/${t}`, join(dir, t));
      const r = spawnSync('/usr/bin/bash', ['-c', lookScript(['bash', 'mv', 'seq', 'etcdctl'])], { env: { PATH: dir }, encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['tool:bash=1', 'tool:etcdctl=0', 'tool:mv=1', 'tool:seq=0']);
      const full = spawnSync('/usr/bin/bash', ['-c', lookScript(['etcdctl'])], { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
      expect(full.stdout).toMatch(/^version:etcdctl=etcdctl version: 3\.\d+\.\d+$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
