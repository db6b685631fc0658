import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import type { EndpointProbe, ProbedMember } from '../../src/etcd/probe.js';
import { hexId } from '../../src/etcd/pool.js';
import { assessCluster } from '../../src/status/assess.js';

const FP = 'SHA256:' + 'A'.repeat(43);
const cluster = parseInventory(
  `clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"] }
    members:
${[1, 2, 3].map((i) => `      - { name: m${i}, host: 10.0.0.${i}, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${FP} } }`).join('\n')}
`,
  'test.yaml',
).clusters[0]!;

const ID = (i: number) => (BigInt('0x8e9e05c52164694d') + BigInt(i)).toString();
const CLUSTER = '1234567890123456789';
const listed = (n: number): ProbedMember[] =>
  Array.from({ length: n }, (_, i) => ({ id: ID(i), name: `m${i + 1}`, peerURLs: [`https://10.0.0.${i + 1}:2380`], clientURLs: [`https://10.0.0.${i + 1}:2379`], isLearner: false }));

function answer(i: number, members: ProbedMember[], clusterId = CLUSTER, memberId = ID(i)): EndpointProbe {
  return {
    endpoint: `https://10.0.0.${i + 1}:2379`,
    ok: true,
    tookMs: 3,
    members,
    status: { memberId, clusterId, revision: 42, version: '3.4.23', dbSize: 20480, dbSizeInUse: 16384, leader: ID(0), raftIndex: 500, raftTerm: 3, raftAppliedIndex: 500, isLearner: false, errors: [] },
  };
}
const probe = (endpoints: EndpointProbe[]) => ({ cluster: 'prod', at: new Date(), tookMs: 5, endpoints, alarms: [] });

describe('endpoints that answer for no listed member (what a fence is for)', () => {
  it('none when every answer is a listed member of the cluster', () => {
    const r = assessCluster(cluster, probe([answer(0, listed(3)), answer(1, listed(3)), answer(2, listed(3))]));
    expect(r.strangers).toEqual([]);
  });

  it('a member of another cluster on m3\'s address: left out of the rows, named with its cluster ID', () => {
    const r = assessCluster(cluster, probe([answer(0, listed(3)), answer(1, listed(3)), answer(2, [listed(3)[2]!], '999', ID(7))]));
    expect(r.strangers).toEqual([{ endpoint: 'https://10.0.0.3:2379', host: '10.0.0.3', why: 'other-cluster', clusterIdHex: hexId('999'), memberIdHex: hexId(ID(7)) }]);
    expect(r.members.find((m) => m.name === 'm3')!.reachable).toBe(false);
  });

  it('a removed member whose etcd still answers, with the cluster\'s own ID: named, and warned about', () => {
    const r = assessCluster(cluster, probe([answer(0, listed(2)), answer(1, listed(2)), answer(2, listed(3))]));
    expect(r.strangers).toEqual([{ endpoint: 'https://10.0.0.3:2379', host: '10.0.0.3', why: 'removed', clusterIdHex: hexId(CLUSTER), memberIdHex: hexId(ID(2)) }]);
    expect(r.warnings).toContain(`https://10.0.0.3:2379 answers as member ${hexId(ID(2))}, which is not in the member list: a removed member whose etcd still runs.`);
    expect(r.members.map((m) => m.name)).toEqual(['m1', 'm2']);
  });
});
