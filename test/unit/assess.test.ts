import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import type { ClusterProbe, EndpointProbe, ProbedMember } from '../../src/etcd/probe.js';
import { blockLimitViolations } from '../../src/render/block-limits.js';
import { renderStatus } from '../../src/render/status-message.js';
import { assessCluster, formatBytes } from '../../src/status/assess.js';

const FP = 'SHA256:' + 'A'.repeat(43);
function clusterOf(n: number) {
  const ips = Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}`);
  return parseInventory(
    `clusters:
  - name: prod
    etcd: { endpoints: [${ips.map((ip) => `"https://${ip}:2379"`).join(', ')}] }
    members:
${ips.map((ip, i) => `      - { name: m${i + 1}, host: ${ip}, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${FP} } }`).join('\n')}
`,
    'test.yaml',
  ).clusters[0]!;
}

// Member IDs beyond 2^53, as etcd makes them: a Number would round them.
const ID = (i: number) => (BigInt('0x8e9e05c52164694d') + BigInt(i)).toString();
const members = (n: number): ProbedMember[] =>
  Array.from({ length: n }, (_, i) => ({
    id: ID(i),
    name: `m${i + 1}`,
    peerURLs: [`https://10.0.0.${i + 1}:2380`],
    clientURLs: [`https://10.0.0.${i + 1}:2379`],
    isLearner: false,
  }));

function up(i: number, n: number, over: Partial<Extract<EndpointProbe, { ok: true }>['status']> = {}): EndpointProbe {
  return {
    endpoint: `https://10.0.0.${i + 1}:2379`,
    ok: true,
    tookMs: 3,
    members: members(n),
    status: {
      memberId: ID(i),
      clusterId: '1234567890123456789',
      revision: 42,
      version: '3.4.23',
      dbSize: 20480,
      dbSizeInUse: 16384,
      leader: ID(0),
      raftIndex: 500,
      raftTerm: 3,
      raftAppliedIndex: 500,
      isLearner: false,
      errors: [],
      ...over,
    },
  };
}
const down = (i: number, kind: 'timeout' | 'refused' | 'tls' = 'refused'): EndpointProbe => ({
  endpoint: `https://10.0.0.${i + 1}:2379`,
  ok: false,
  tookMs: 2000,
  error: { kind, message: kind === 'timeout' ? 'no answer before the deadline' : 'connection refused' },
});
const probe = (endpoints: EndpointProbe[], alarms: ClusterProbe['alarms'] = []): ClusterProbe => ({
  cluster: 'prod',
  at: new Date('2026-11-23T03:00:00Z'),
  tookMs: 12,
  endpoints,
  alarms,
});

describe('assessCluster', () => {
  it('three healthy members: HEALTHY, tolerance 1, hex IDs exact, leader marked', () => {
    const r = assessCluster(clusterOf(3), probe([up(0, 3), up(1, 3), up(2, 3)]));
    expect(r.verdict).toBe('HEALTHY');
    expect(r.tolerance).toBe(1);
    expect(r.members.map((m) => m.idHex)).toEqual(['8e9e05c52164694d', '8e9e05c52164694e', '8e9e05c52164694f']);
    expect(r.members.filter((m) => m.isLeader).map((m) => m.name)).toEqual(['m1']);
    expect(r.warnings).toEqual([]);
  });

  it('one of three down: DEGRADED with no failure left to spare, and names the next command', () => {
    const r = assessCluster(clusterOf(3), probe([up(0, 3), up(1, 3), down(2, 'timeout')]));
    expect(r.verdict).toBe('DEGRADED');
    expect(r.tolerance).toBe(0);
    expect(r.summary).toContain('One more failure loses quorum');
    expect(r.next).toContain('`/etcd replace m3`');
    expect(r.members[2]!.error).toEqual({ kind: 'timeout', message: 'no answer before the deadline' });
    expect(r.warnings).toContain('m3 (8e9e05c52164694f) is in the member list but does not answer: no answer before the deadline.');
  });

  it('five members with two down can still lose none; with one down, one', () => {
    expect(assessCluster(clusterOf(5), probe([up(0, 5), up(1, 5), up(2, 5), down(3), down(4)])).tolerance).toBe(0);
    expect(assessCluster(clusterOf(5), probe([up(0, 5), up(1, 5), up(2, 5), up(3, 5), down(4)])).tolerance).toBe(1);
  });

  it('two of three down: QUORUM LOST, even while the survivor still names the dead leader', () => {
    const r = assessCluster(clusterOf(3), probe([down(0), down(1), up(2, 3)], null));
    expect(r.verdict).toBe('QUORUM_LOST');
    expect(r.next).toContain('/etcd restore-quorum');
    expect(r.healthyVoters).toBe(1);
  });

  it('a survivor that reports no leader does not count toward quorum', () => {
    const r = assessCluster(clusterOf(3), probe([up(0, 3, { leader: '0', errors: ['etcdserver: no leader'] }), up(1, 3, { leader: '0' }), down(2)], null));
    expect(r.verdict).toBe('QUORUM_LOST');
    expect(r.warnings).toContain('m1 reports: etcdserver: no leader');
  });

  it('nothing answers: QUORUM LOST when every port refuses, UNREACHABLE when they time out', () => {
    expect(assessCluster(clusterOf(3), probe([down(0), down(1), down(2)], null)).verdict).toBe('QUORUM_LOST');
    const r = assessCluster(clusterOf(3), probe([down(0, 'timeout'), down(1, 'timeout'), down(2, 'tls')], null));
    expect(r.verdict).toBe('UNREACHABLE');
    expect(r.members.map((m) => m.name)).toEqual(['m1', 'm2', 'm3']);
  });

  it('warns of a lagging member, an alarm, an unknown endpoint and a foreign cluster ID', () => {
    const lagging = up(2, 3, { raftIndex: 100, raftAppliedIndex: 100 });
    const cluster = clusterOf(3);
    cluster.etcd.endpoints.push('https://10.0.0.9:2379');
    const foreign = { ...up(0, 3, { clusterId: '99' }), endpoint: 'https://10.0.0.9:2379' } as EndpointProbe;
    const r = assessCluster({ ...cluster, etcd: { ...cluster.etcd, lagWarnEntries: 50 } }, probe([up(0, 3, { raftIndex: 400 }), up(1, 3, { raftIndex: 400 }), lagging, foreign], [{ memberId: ID(1), alarm: 'NOSPACE' }]));
    expect(r.verdict).toBe('DEGRADED');
    expect(r.summary).toContain('alarm NOSPACE raised');
    expect(r.members[1]!.alarms).toEqual(['NOSPACE']);
    expect(r.warnings).toContain('m3 lags by 300 raft entries (index 100 against 400).');
    expect(r.warnings).toContain('Endpoint https://10.0.0.9:2379 is in the inventory but no member lists it as a client URL.');
    expect(r.warnings.some((w) => w.startsWith('Endpoints report different cluster IDs') && w.includes('10.0.0.9:2379 → 63'))).toBe(true);
  });

  it('a learner and a member added but never started are shown as such', () => {
    const list = [...members(3), { id: ID(7), name: '', peerURLs: ['https://10.0.0.4:2380'], clientURLs: [], isLearner: true }];
    const ep = (i: number) => ({ ...up(i, 3), members: list }) as EndpointProbe;
    const r = assessCluster(clusterOf(3), probe([ep(0), ep(1), ep(2)]));
    const fresh = r.members.find((m) => !m.started)!;
    expect(fresh).toMatchObject({ name: '(not started)', learner: true, error: { kind: 'not_started' } });
    expect(r.voters).toBe(3);
    expect(r.verdict).toBe('DEGRADED');
    expect(r.warnings.some((w) => w.includes('was added but never started'))).toBe(true);
  });
});

describe('renderStatus', () => {
  it('fits Block Kit limits for 1, 3, 5, 7 and 60 members', () => {
    for (const n of [1, 3, 5, 7, 60]) {
      const eps = Array.from({ length: n }, (_, i) => (i % 3 === 2 ? down(i, 'timeout') : up(i, n)));
      const r = assessCluster(clusterOf(n), probe(eps));
      const msg = renderStatus(r, 'asked by <@U1> · job status-1');
      expect(blockLimitViolations(msg.blocks), `${n} members`).toEqual([]);
      const text = JSON.stringify(msg.blocks);
      for (let i = 0; i < n; i++) expect(text).toContain(`*m${i + 1}*`);
    }
  });

  it('puts the verdict in the header and the notification text', () => {
    const msg = renderStatus(assessCluster(clusterOf(3), probe([up(0, 3), up(1, 3), down(2)])), 'x');
    expect(msg.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'etcd prod: DEGRADED (can lose 0 more)' } });
    expect(msg.text).toMatch(/^etcd prod: DEGRADED \(can lose 0 more\)\. Quorum holds/);
  });

  it('formats sizes as people read them', () => {
    expect([formatBytes(512), formatBytes(20480), formatBytes(105 * 1024 ** 2), formatBytes(2 * 1024 ** 3)]).toEqual(['512 B', '20.0 KB', '105 MB', '2.0 GB']);
  });
});

describe('blockLimitViolations', () => {
  it('refuses what real Slack refuses', () => {
    const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });
    expect(blockLimitViolations(Array.from({ length: 51 }, () => ({ type: 'divider' })))).toEqual(['51 blocks (max 50)']);
    expect(blockLimitViolations([section('x'.repeat(3001))])).toEqual(['blocks[0] section text over 3000']);
    expect(blockLimitViolations([{ type: 'section', fields: Array.from({ length: 11 }, () => ({ type: 'mrkdwn', text: 'a' })) }])).toEqual(['blocks[0] has 11 fields (max 10)']);
    expect(blockLimitViolations([{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'x'.repeat(76) }, action_id: 'a' }] }])).toEqual(['blocks[0].elements[0] button text over 75']);
    expect(blockLimitViolations([{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }])).toEqual(['blocks[0] header text over 150']);
  });
});
