import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUntilEnded, killAfterEach, WorkerChain } from '../support/crash-workers.js';
import type { MedicLab } from '../support/medic-lab.js';
import { defragTimes, fillUntilNospace, nospaceLab, QUOTA } from '../support/nospace.js';
import { latest, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
// Every step of the defrag runbook on three members, in plan order: the worker dies right after each one acts.
const STEPS = ['compact', 'defrag-member', 'defrag-member', 'defrag-member', 'alarm-disarm', 'write-check'];

describe('/etcd defrag with a worker killed right after every step', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes so that each can die.
    t = await nospaceLab('defrag-crash', 143, { roles: ROLES, botOnly: true });
  });
  afterAll(async () => {
    await chain?.stop();
    await t?.stop();
  });

  it('resumed after each of its 6 steps: compacted once, each member defragmented once (followers, then the leader), the alarm disarmed, writes work', async () => {
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/keep/k${i}`, `v${i}`]);
    await fillUntilNospace(t);
    expect((await t.lab.etcdctl(['put', '/after', 'x'], undefined, true)).stderr).toContain('etcdserver: mvcc: database space exceeded');
    const leaderHex = await t.lab.leaderHex();
    const leader = (await t.lab.memberList()).find((m) => m.id === leaderHex)!.name;

    // The fault: worker k kills itself (SIGKILL) right after step k acts, before recording it; worker k+1 takes the job over.
    chain = new WorkerChain(t.env, killAfterEach(STEPS));
    const since = t.slack.lastSeq;
    await t.command('defrag', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Compact and defragment lab|\/etcd defrag.* refused)/.test(String(r.body.text)), 60_000, since);
    expect(String(plan.body.text)).toMatch(/^Compact and defragment lab/);
    const ts = plan.ts!;
    const order = [...textOf(latest(t.slack, ts)).matchAll(/Defragment (m\d) \(/g)].map((m) => m[1]!);
    expect(order[2]).toBe(leader);

    const header = await approveUntilEnded(t, ts, 'UBOB', 180_000, () => chain!.output());
    const thread = threadOf(t.slack, ts).join('\n');
    expect(header, `${thread}\n${chain.output()}`).toBe('Compact and defragment lab: DONE');
    // One worker died after each step; the one after the last finished the run.
    expect(chain.exits().slice(0, STEPS.length), chain.output()).toEqual(STEPS.map(() => 'SIGKILL'));
    expect(chain.exits()).toHaveLength(STEPS.length + 1);
    for (let i = 1; i <= STEPS.length; i++) expect(thread).toMatch(new RegExp(`Step ${i} \\(.*\\) was interrupted; resuming`));

    // Each resumed step found its work done and did not do it again.
    expect(thread).toMatch(/:fast_forward: Step 1: Compact the keyspace to revision \d+: the keyspace is already compacted to revision \d+ or later: not compacted again/);
    for (const [i, m] of order.entries()) expect(thread).toMatch(new RegExp(`:fast_forward: Step ${i + 2}: Defragment ${m} [^:]*: ${m} was defragmented by this step's earlier try`));
    expect(thread).toMatch(/:fast_forward: Step 5: Disarm the NOSPACE alarm: no NOSPACE alarm is raised: nothing to disarm/);
    // etcd's own logs: one defragment per member, followers first, the leader last.
    const times = Object.fromEntries(['m1', 'm2', 'm3'].map((m) => [m, defragTimes(t, m)]));
    for (const m of ['m1', 'm2', 'm3']) expect(times[m], m).toHaveLength(1);
    const ended = order.map((m) => times[m]![0]!);
    expect([...ended].sort((a, b) => a - b)).toEqual(ended);

    // Healthy at the end: writes work, no alarm, every key kept, every database far below the quota.
    expect((await t.lab.etcdctl(['put', '/after', 'x'])).stdout).toContain('OK');
    expect((await t.lab.etcdctl(['alarm', 'list'])).stdout.trim()).toBe('');
    expect((await t.lab.etcdctl(['endpoint', 'health'], t.lab.endpoints, true)).code).toBe(0);
    const { stdout } = await t.lab.etcdctl(['get', '/keep/', '--prefix', '--keys-only']);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);
    const status = JSON.parse((await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'])).stdout) as { Status: { dbSize: number } }[];
    for (const s of status) expect(s.Status.dbSize).toBeLessThan(QUOTA / 2);
    // The write check's key is gone again.
    expect((await t.lab.etcdctl(['get', '/etcd-medic/', '--prefix', '--keys-only'])).stdout.trim()).toBe('');
  });
});
