import { describe, expect, it } from 'vitest';
import type { TargetReading } from '../../src/certs/targets.js';
import { renderStatus } from '../../src/render/status-message.js';
import { decodeCommand } from '../../src/render/command-button.js';
import { withDiagnosis } from '../../src/render/diagnosis-message.js';
import { blockLimitViolations as checkBlocks } from '../../src/render/block-limits.js';
import type { MemberRow, StatusReport, Stranger } from '../../src/status/assess.js';
import { diagnose, SAFETY_ORDER, type Diagnosis, type PendingCsr } from '../../src/status/diagnose.js';
import { planDefrag } from '../../src/runbook/defrag-plan.js';
import { planReplace } from '../../src/runbook/replace-plan.js';
import { planRestoreQuorum, type HostView } from '../../src/runbook/restore-quorum-plan.js';
import type { ObservedState } from '../../src/runbook/types.js';
import { memberRow, threeMasters } from '../support/fixtures.js';

const { inventory, cluster } = threeMasters('{}');
const up = (i: number, raftIndex = 100, over: Partial<MemberRow> = {}) => memberRow(i, { raftIndex, revision: raftIndex, leader: '1' }, { isLeader: i === 1, ...over });
const down = (i: number) => memberRow(i, null);

/** A report as assessCluster would make it from these rows (verdict from the voters that answer). */
function report(members: MemberRow[], over: Partial<StatusReport> = {}): StatusReport {
  const healthy = members.filter((m) => m.status && m.status.leader !== '0').length;
  const quorum = Math.floor(members.length / 2) + 1;
  const allUp = healthy === members.length && members.every((m) => m.alarms.length === 0);
  return {
    cluster: 'prod',
    at: new Date('2026-11-27T00:00:00Z'),
    tookMs: 10,
    verdict: healthy < quorum ? 'QUORUM_LOST' : allUp ? 'HEALTHY' : 'DEGRADED',
    summary: 's',
    next: 'n',
    voters: members.length,
    quorum,
    healthyVoters: healthy,
    tolerance: Math.max(0, healthy - quorum),
    clusterIdHex: '1',
    leaderHex: '1',
    members,
    warnings: [],
    ...over,
  };
}

const NOW = Date.parse('2026-11-27T00:00:00Z');
function cert(kind: 'kubelet' | 'etcd-peer', member: string, daysLeft: number): TargetReading {
  const notAfter = new Date(NOW + daysLeft * 86_400_000 + 3600_000);
  return {
    target: { kind, label: `${kind} ${member}`, member, host: '10.0.0.1', port: kind === 'kubelet' ? 10250 : 2380 },
    ok: true,
    cert: { subject: 'CN=x', issuer: 'CN=ca', notBefore: new Date(NOW - 86_400_000 * 300), notAfter, fingerprint256: 'x' },
    expiry: { level: daysLeft < 0 ? 'error' : daysLeft < 30 ? 'warn' : 'ok', daysLeft, text: daysLeft < 0 ? `expired ${-daysLeft} days ago` : `expires in ${daysLeft} days` },
  };
}
const stranger = (host: string, why: Stranger['why']): Stranger => ({ endpoint: `https://${host}:2379`, host, why, clusterIdHex: why === 'other-cluster' ? 'beef' : '1', memberIdHex: 'dead' });

interface Case {
  name: string;
  report: StatusReport;
  certs?: TargetReading[];
  csrs?: PendingCsr[];
  /** [kind, title, the typed command of its button or null, a piece of the evidence] per diagnosis, in order. */
  want: [Diagnosis['kind'], string, string | null, string][];
}

const cases: Case[] = [
  { name: 'healthy: nothing', report: report([up(1), up(2), up(3)]), want: [] },
  {
    name: 'one member down, quorum intact',
    report: report([up(1), up(2), down(3)]),
    want: [['replace', 'Replace m3', 'replace m3 prod', 'm3 (a3) does not answer (refused: connection refused) while quorum holds.']],
  },
  {
    name: 'a member raising CORRUPT',
    report: report([up(1), up(2), up(3, 100, { alarms: ['CORRUPT'] })]),
    want: [['replace', 'Replace m3', 'replace m3 prod', 'raised the CORRUPT alarm']],
  },
  {
    name: 'a member lagging past the limit',
    report: report([up(1, 5000), up(2, 5000), up(3, 100)]),
    want: [['replace', 'Replace m3 if it does not catch up', 'replace m3 prod', 'lags by 4900 raft entries (index 100 against 5000; the limit is 1000)']],
  },
  {
    name: 'majority lost: the survivor with the highest raft index, and why',
    report: report([up(1, 640), down(2), down(3)]),
    want: [['restore-quorum', 'Restore quorum from m1', 'restore-quorum prod', 'Survivor m1: it answers with the highest raft index (640, the only one answering)']],
  },
  {
    // The planner refuses while a member other than the survivor still runs: no button it would refuse, the text says what first.
    name: 'majority lost, two answer without a leader: the one with the higher raft index, as the planner picks, once the other is stopped',
    report: report([
      memberRow(1, { raftIndex: 640, revision: 600, leader: '0' }),
      memberRow(2, { raftIndex: 700, revision: 650, leader: '0' }),
      down(3),
    ]),
    want: [['restore-quorum', 'Restore quorum from m2, not yet', null, 'Survivor m2: it answers with the highest raft index (700 against m1 640). Not yet: m1 still answers']],
  },
  {
    name: 'majority lost, nobody answers',
    report: report([down(1), down(2), down(3)]),
    want: [['restore-quorum', 'Restore quorum', 'restore-quorum prod', "reads each stopped member's database over SSH"]],
  },
  {
    name: 'a stale member of another cluster on an inventory host: fence it (replace), not a replace of the down member',
    report: report([up(1), up(2), memberRow(3, null, { error: { kind: 'error', message: 'no configured endpoint serves this member' } })], { strangers: [stranger('10.0.0.3', 'other-cluster')] }),
    want: [['fence', 'Fence m3 and rejoin it', 'replace m3 prod', 'https://10.0.0.3:2379 answers as member dead of cluster beef, not of 1']],
  },
  {
    name: 'a removed member still listening on a host the inventory does not know: by hand',
    report: report([up(1), up(2), up(3)], { strangers: [stranger('10.0.0.9', 'removed')] }),
    want: [['fence', 'Stop the etcd on 10.0.0.9', null, 'no longer in the member list']],
  },
  {
    name: 'a stale member while quorum is lost: stop it by hand first, then restore quorum',
    report: report([up(1), down(2), down(3)], { strangers: [stranger('10.0.0.3', 'other-cluster')] }),
    want: [
      ['fence', 'Stop the etcd on m3 before restoring quorum', null, 'before `/etcd restore-quorum`'],
      ['restore-quorum', 'Restore quorum from m1', 'restore-quorum prod', 'Majority lost'],
    ],
  },
  {
    name: 'NOSPACE alarm',
    report: report([up(1, 100, { alarms: ['NOSPACE'] }), up(2, 100, { alarms: ['NOSPACE'] }), up(3)]),
    want: [['defrag', 'Compact and defragment', 'defrag prod', 'alarm NOSPACE on m1, m2 (writes refused)']],
  },
  {
    name: 'database near the quota',
    report: report([up(1), up(2), up(3, 100, { status: { ...up(3).status!, dbSize: 1.8 * 1024 ** 3 } })]),
    want: [['defrag', 'Compact and defragment', 'defrag prod', 'database m3 1.8 GB of a 2.0 GB quota']],
  },
  {
    name: 'kubelet certificates ending within 7 days: renew those kubelets',
    report: report([up(1), up(2), up(3)]),
    certs: [cert('kubelet', 'm1', 3), cert('kubelet', 'm2', 40)],
    want: [['renew-certs', 'Renew kubelet certificates', 'kubelets renew prod m1', 'kubelet on m1 expires in 3 days']],
  },
  {
    name: 'an expired etcd peer certificate: how to renew it',
    report: report([up(1), up(2), up(3)]),
    certs: [cert('etcd-peer', 'm2', -2)],
    want: [['renew-certs', 'Renew 1 certificate', 'certs prod', 'etcd peer of m2 expired 2 days ago']],
  },
  {
    name: 'pending CSRs of a master',
    report: report([up(1), up(2), up(3)]),
    csrs: [{ name: 'csr-a', node: 'm2' }, { name: 'csr-b', node: 'm2' }],
    want: [['review-csrs', 'Review 2 pending CSRs', 'csr prod', '2 CSRs of control-plane node m2 wait for approval (csr-a, csr-b)']],
  },
  {
    name: 'two apply: the safest first (CSRs, then certificates, then the replace)',
    report: report([up(1), up(2), down(3)]),
    certs: [cert('kubelet', 'm1', 1)],
    csrs: [{ name: 'csr-a', node: 'm3' }],
    want: [
      ['review-csrs', 'Review 1 pending CSR', 'csr prod', 'wait'],
      ['renew-certs', 'Renew kubelet certificates', 'kubelets renew prod m1', 'kubelet on m1'],
      ['replace', 'Replace m3', 'replace m3 prod', 'does not answer'],
    ],
  },
  {
    name: 'majority lost with a kubelet certificate ending and an expired etcd peer certificate: the etcd certificate, then the restore, then the kubelet',
    report: report([up(1, 640, { status: { ...up(1).status!, leader: '0' } }), down(2), down(3)]),
    certs: [cert('kubelet', 'm1', 3), cert('etcd-peer', 'm2', -2)],
    want: [
      ['renew-certs', 'Renew 1 certificate', 'certs prod', 'etcd peer of m2 expired 2 days ago'],
      ['restore-quorum', 'Restore quorum from m1', 'restore-quorum prod', 'Majority lost'],
      ['renew-certs', 'Renew kubelet certificates', 'kubelets renew prod m1', 'kubelet on m1 expires in 3 days'],
    ],
  },
  {
    // The defrag planner refuses while a member is down (a defragment blocks its member): no button it would refuse.
    name: 'NOSPACE and a member down: the replace first, the defragment after it, without a button',
    report: report([up(1, 100, { alarms: ['NOSPACE'] }), up(2), down(3)]),
    want: [
      ['replace', 'Replace m3', 'replace m3 prod', 'm3'],
      ['defrag', 'Compact and defragment, not yet', null, 'alarm NOSPACE on m1 (writes refused). Not yet: m3 (a3) does not answer.'],
    ],
  },
  {
    name: 'NOSPACE and a CORRUPT member: replace the corrupt one first, the defragment after it',
    report: report([up(1, 100, { alarms: ['NOSPACE'] }), up(2), up(3, 100, { alarms: ['CORRUPT'] })]),
    want: [
      ['replace', 'Replace m3', 'replace m3 prod', 'raised the CORRUPT alarm'],
      ['defrag', 'Compact and defragment, not yet', null, 'Not yet: alarm CORRUPT is raised'],
    ],
  },
];

describe('diagnose: from what status saw to the runbook that fixes it', () => {
  it.each(cases)('$name', (c) => {
    const got = diagnose({ cluster, report: c.report, certs: c.certs ?? null, csrs: c.csrs ?? null });
    expect(got.map((d) => [d.kind, d.title, d.offer ? [d.offer.command, ...d.offer.args].join(' ') : null])).toEqual(c.want.map(([k, t, cmd]) => [k, t, cmd]));
    got.forEach((d, i) => {
      expect(d.evidence).toContain(c.want[i]![3]);
      // One line of evidence.
      expect(d.evidence).not.toContain('\n');
    });
  });

  // A button the planner refuses on the very state it was offered for sends the clicker round in circles at 3 a.m.
  it.each(cases)('every button is one its planner accepts on the same state: $name', (c) => {
    const got = diagnose({ cluster, report: c.report, certs: c.certs ?? null, csrs: c.csrs ?? null });
    const state: ObservedState = { members: [], leaderHex: c.report.leaderHex, raftIndex: 100, revision: 100, at: new Date(NOW).toISOString() };
    const req = { runId: 'r-0000abcd', requestedBy: 'UALICE', channelId: 'CINC' };
    // The hosts of the members that do not answer: reachable over SSH, etcd stopped, its data and config there.
    const hosts: HostView[] = c.report.members
      .filter((m) => !m.status)
      .map((m) => ({ name: m.name, reachable: true, listening: false, hasConfig: true, hasData: true, offlineRevision: 10 }));
    for (const d of got) {
      const o = d.offer;
      if (!o) continue;
      const out =
        o.command === 'defrag'
          ? planDefrag(inventory, cluster, c.report, state, req, new Date(NOW))
          : o.command === 'restore-quorum'
            ? planRestoreQuorum(inventory, cluster, c.report, state, hosts, req, new Date(NOW))
            : o.command === 'replace'
              ? planReplace(inventory, cluster, c.report, state, { ...req, target: o.args[0]!, force: o.args.includes('--force') }, new Date(NOW))
              : { ok: true as const };
      expect(out.ok ? 'planned' : `${d.title} refused: ${out.reason}`).toBe('planned');
    }
  });

  it('a Replace button clicked after the fault is gone plans nothing and says why (the planner asks again)', () => {
    const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 100, revision: 100, at: new Date(NOW).toISOString() };
    const replace = (r: StatusReport) => planReplace(inventory, cluster, r, state, { runId: 'r-0000abcd', requestedBy: 'UALICE', channelId: 'CINC', target: 'm3', force: false }, new Date(NOW));
    // Offered for a CORRUPT alarm: planned, the plan saying why an answering member is replaced.
    const corrupt = replace(report([up(1), up(2), up(3, 100, { alarms: ['CORRUPT'] })]));
    expect(corrupt.ok && corrupt.run.rationale).toContain('m3 answers, but it raises the CORRUPT alarm: it is replaced as a failed member.');
    // Offered for a lag of 4,900 entries; an hour later m3 has caught up and the alarm is gone: refused, m3 is healthy.
    for (const later of [report([up(1, 5000), up(2, 5000), up(3, 4990)]), report([up(1), up(2), up(3)])]) {
      const out = replace(later);
      expect(out.ok ? 'planned' : out.reason).toMatch(/^m3 \(a3\) is healthy: it answers, raft index \d+\. Replacing a healthy member is rarely right/);
    }
  });

  it('orders by safety whatever order the faults were found in', () => {
    expect(SAFETY_ORDER.indexOf('fence')).toBeLessThan(SAFETY_ORDER.indexOf('replace'));
    expect(SAFETY_ORDER.indexOf('replace')).toBeLessThan(SAFETY_ORDER.indexOf('restore-quorum'));
  });

  it('keys stay the same while the fault is the same, and change when it changes', () => {
    const keys = (r: StatusReport, certs: TargetReading[] | null = null) => diagnose({ cluster, report: r, certs, csrs: null }).map((d) => d.key);
    expect(keys(report([up(1, 100), up(2, 100), down(3)]))).toEqual(keys(report([up(1, 900), up(2, 900), down(3)])));
    // A defragment that waited for m3 gets its button once m3 is back: a change the watch posts.
    expect(keys(report([up(1, 100, { alarms: ['NOSPACE'] }), up(2), down(3)]))).not.toContain('defrag:nospace');
    expect(keys(report([up(1, 100, { alarms: ['NOSPACE'] }), up(2), up(3)]))).toContain('defrag:nospace');
    expect(keys(report([up(1), up(2), up(3)]), [cert('kubelet', 'm1', 5)])).not.toEqual(keys(report([up(1), up(2), up(3)]), [cert('kubelet', 'm1', -1)]));
  });
});

describe('the diagnosis in the status message', () => {
  it('adds a section with its button per diagnosis before the footer, within Slack limits, and the button value decodes to the command', () => {
    const r = report([up(1, 100, { alarms: ['NOSPACE'] }), up(2), down(3)]);
    const ds = diagnose({ cluster, report: r, certs: null, csrs: null });
    const msg = withDiagnosis(renderStatus(r, 'asked by <@U1>'), ds, 'prod');
    expect(msg.blocks.at(-1)!.type).toBe('context');
    const diag = msg.blocks.filter((b) => String(b.block_id ?? '').startsWith('diagnosis-'));
    expect(diag).toHaveLength(2);
    // The replace has its button; the defragment, which waits for it, has none and says so.
    const acc = diag.map((b) => b.accessory as { action_id: string; value: string; text: { text: string } } | undefined);
    expect(acc[0]!.action_id).toBe('medic_command');
    expect(decodeCommand(acc[0]!.value)).toEqual({ command: 'replace', args: ['m3', 'prod'] });
    expect(acc[0]!.text.text).toBe('Replace m3');
    expect(acc[1]).toBeUndefined();
    expect((diag[1]!.text as { text: string }).text).toContain('*2. Compact and defragment, not yet* _(after the above)_');
    expect(checkBlocks(msg.blocks)).toEqual([]);
    expect(msg.text).toContain('Diagnosis: Replace m3 (+1 more).');
  });

  it('leaves a message without diagnosis as it was', () => {
    const r = report([up(1), up(2), up(3)]);
    const msg = renderStatus(r, 'f');
    expect(withDiagnosis(msg, [], 'prod')).toBe(msg);
  });
});
