import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import type { EtcdPool } from '../../src/etcd/pool.js';
import type { StatusProgress } from '../../src/status/progress.js';
import { viewCluster } from '../../src/worker/cluster-view.js';

const FP = 'SHA256:' + 'A'.repeat(43);
const cluster = parseInventory(
  `clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"], callTimeoutMs: 2000 }
    members:
${[1, 2, 3].map((i) => `      - { name: m${i}, host: 10.0.0.${i}, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${FP} } }`).join('\n')}
`,
  'test.yaml',
).clusters[0]!;

const ID = (i: number) => (BigInt('0x8e9e05c52164694d') + BigInt(i)).toString();
const list = { members: [1, 2, 3].map((i) => ({ ID: ID(i), name: `m${i}`, peerURLs: [`https://10.0.0.${i}:2380`], clientURLs: [`https://10.0.0.${i}:2379`], isLearner: false })) };
const after = <T>(ms: number, v: () => T) => new Promise<T>((resolve, reject) => setTimeout(() => {
  try {
    resolve(v());
  } catch (e) {
    reject(e);
  }
}, ms));
const deadlineExceeded = () => {
  throw new Error('4 DEADLINE_EXCEEDED: Deadline exceeded');
};

/**
 * A pool whose members answer as scripted: a number is how long the member takes to answer (its
 * status naming `leader`), 'frozen' a member that accepts and never answers, so its calls fail at
 * the deadline as gRPC's do. The alarm list goes through raft: it fails at its deadline when the
 * leader is frozen. Records when each call started.
 */
function scriptedPool(members: Record<number, number | 'frozen'>, leader: number) {
  const calls: { what: string; at: number }[] = [];
  const t0 = Date.now();
  const client = (endpoint: string) => {
    const i = Number(/10\.0\.0\.(\d)/.exec(endpoint)![1]);
    const how = members[i]!;
    const answer = <T>(v: () => T) => (how === 'frozen' ? after(2000, deadlineExceeded) : after(how, v));
    return {
      maintenance: {
        status: () => {
          calls.push({ what: `status m${i}`, at: Date.now() - t0 });
          return answer(() => ({ header: { member_id: ID(i), cluster_id: '99', revision: '7' }, version: '3.4.23', dbSize: '20480', dbSizeInUse: '16384', leader: ID(leader), raftIndex: '500', raftTerm: '3', raftAppliedIndex: '500', isLearner: false, errors: [] }));
        },
        alarm: (_req: unknown, opts: { deadline: number }) => {
          calls.push({ what: `alarm m${i}`, at: Date.now() - t0 });
          return members[leader] === 'frozen' ? after(opts.deadline - Date.now(), deadlineExceeded) : after(5, () => ({ alarms: [] }));
        },
      },
      cluster: { memberList: () => answer(() => list) },
    };
  };
  return { pool: { client: (_c: unknown, ep: string) => client(ep) } as unknown as EtcdPool, calls };
}

describe('viewCluster with members that do not answer', () => {
  beforeEach(() => void vi.useFakeTimers({ now: new Date('2026-11-27T03:00:00Z') }));
  afterEach(() => void vi.useRealTimers());

  it('two frozen members, one of them the leader m1 still names: the verdict after one deadline, not two, and progress before it', async () => {
    const { pool, calls } = scriptedPool({ 1: 15, 2: 'frozen', 3: 'frozen' }, 2);
    const seen: StatusProgress[] = [];
    let doneAt = -1;
    const t0 = Date.now();
    const view = viewCluster(cluster, pool, undefined, { onProgress: (p) => seen.push(p) }).then((v) => ((doneAt = Date.now() - t0), v));
    await vi.advanceTimersByTimeAsync(5000);
    const { report } = await view;

    expect(report.verdict).toBe('QUORUM_LOST');
    // The alarm list was asked as soon as m1 answered, beside m2's and m3's calls, and ran out with them.
    expect(calls.find((c) => c.what === 'alarm m1')!.at).toBe(15);
    expect(doneAt).toBeLessThanOrEqual(2000);

    // Progress: nothing known, then m1's answer with m2 and m3 waited for, then m3 alone (then, in the same
    // instant, the alarm list, whose deadline is theirs); never the complete view.
    expect(seen.map((p) => p.waiting).slice(0, 3)).toEqual([['m1', 'm2', 'm3'], ['m2', 'm3'], ['m3']]);
    expect(seen.slice(3).map((p) => p.waiting)).toEqual(seen.length > 3 ? [['the alarm list']] : []);
    expect(seen[1]!.rows.find((r) => r.name === 'm1')).toMatchObject({ state: 'answered', leaderHex: BigInt(ID(2)).toString(16) });
    expect(seen[2]!.rows.find((r) => r.name === 'm2')).toMatchObject({ state: 'failed', error: { kind: 'timeout' } });
  });

  it('every member answers: progress only while someone is still asked, and the alarm list read', async () => {
    const { pool } = scriptedPool({ 1: 5, 2: 8, 3: 12 }, 1);
    const seen: StatusProgress[] = [];
    const view = viewCluster(cluster, pool, undefined, { onProgress: (p) => seen.push(p) });
    await vi.advanceTimersByTimeAsync(100);
    const { report } = await view;
    expect(report.verdict).toBe('HEALTHY');
    expect(seen.every((p) => p.waiting.length > 0)).toBe(true);
    expect(seen.at(-1)!.waiting).toEqual(['m3']);
  });

  it('a fault in showing progress does not lose the view', async () => {
    const { pool } = scriptedPool({ 1: 5, 2: 8, 3: 12 }, 1);
    const view = viewCluster(cluster, pool, undefined, {
      onProgress: () => {
        throw new Error('render bug');
      },
    });
    await vi.advanceTimersByTimeAsync(100);
    expect((await view).report.verdict).toBe('HEALTHY');
  });
});
