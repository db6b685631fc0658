import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { ackText } from '../../src/lab/signed-requests.js';
import { connectRedis } from '../../src/queue/redis.js';
import type { MedicLab } from '../support/medic-lab.js';
import { defragTimes, fillUntilNospace, nospaceLab, QUOTA } from '../support/nospace.js';
import { answerAt, latest, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

// Alice asks; Bob approves; Eve may do nothing destructive.
const ROLES = { read: ['*'], operate: ['*'], destroy: ['UALICE'], approve: ['UBOB'] };
describe('/etcd defrag against a lab cluster at NOSPACE', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await nospaceLab('defrag', 142, { roles: ROLES });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('recovers a cluster at NOSPACE: compacted once approved, each follower then the leader defragmented alone, the alarm disarmed, writes work again', async () => {
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/keep/k${i}`, `v${i}`]);
    await fillUntilNospace(t);
    // What an SRE sees: writes refused, the alarm raised.
    const refused = await t.lab.etcdctl(['put', '/after', 'x'], undefined, true);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('etcdserver: mvcc: database space exceeded');
    expect((await t.lab.etcdctl(['alarm', 'list'])).stdout).toContain('alarm:NOSPACE');
    const leaderHex = await t.lab.leaderHex();
    const leader = (await t.lab.memberList()).find((m) => m.id === leaderHex)!.name;
    const followers = ['m1', 'm2', 'm3'].filter((m) => m !== leader);

    const since = t.slack.lastSeq;
    await t.command('defrag', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Compact and defragment lab|\/etcd defrag.* refused)/.test(String(r.body.text)), 30_000, since);
    expect(String(plan.body.text)).toMatch(/^Compact and defragment lab/);
    const ts = plan.ts!;
    const planText = textOf(latest(t.slack, ts));
    expect(planText).toContain('NOSPACE is raised');
    // The plan names the order: the followers by name, then the leader.
    const order = [...planText.matchAll(/Defragment (m\d) \(/g)].map((m) => m[1]);
    expect(order).toEqual([...followers, leader]);
    expect(planText).toContain(`Defragment ${leader} (the leader, last)`);

    // Compacting needs a second person: Alice cannot approve her own run.
    const gate = await waitForGate(t.slack, ts, 0);
    const click = (user: string) => t.click({ user, messageTs: ts, actionId: 'medic_approve', blockId: gate.blockId, value: gate.approve });
    expect(await answerAt(t.slack, (await click('UALICE')).responseUrl)).toBe(':no_entry: Not approved: you asked for this run; a destructive step needs a second person to approve it.');
    // Nothing happened meanwhile: writes are still refused.
    expect((await t.lab.etcdctl(['put', '/after', 'x'], undefined, true)).code).not.toBe(0);
    expect(await answerAt(t.slack, (await click('UBOB')).responseUrl)).toContain('Approved step 1');
    const done = await waitForRunStatus(t.slack, ts, 'DONE');
    expect(done).toContain('approved by <@UBOB>');

    // Writes work again, the alarm is gone, every member healthy and every key there.
    expect((await t.lab.etcdctl(['put', '/after', 'x'])).stdout).toContain('OK');
    expect((await t.lab.etcdctl(['alarm', 'list'])).stdout.trim()).toBe('');
    expect((await t.lab.etcdctl(['endpoint', 'health'], t.lab.endpoints, true)).code).toBe(0);
    const { stdout } = await t.lab.etcdctl(['get', '/keep/', '--prefix', '--keys-only']);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);
    // Each database is far below the quota again.
    const status = JSON.parse((await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'])).stdout) as { Status: { dbSize: number } }[];
    for (const s of status) expect(s.Status.dbSize).toBeLessThan(QUOTA / 2);

    // Each member defragmented once, in the plan's order, never two at once (etcd's own logs).
    const times = Object.fromEntries(['m1', 'm2', 'm3'].map((m) => [m, defragTimes(t, m)]));
    for (const m of ['m1', 'm2', 'm3']) expect(times[m], m).toHaveLength(1);
    const ended = order.map((m) => times[m!]![0]!);
    expect([...ended].sort((a, b) => a - b)).toEqual(ended);
    expect(Math.max(...followers.map((f) => times[f]![0]!))).toBeLessThan(times[leader]![0]!);

    // The thread tells each step's outcome; the compaction and every defragment are on the incident timeline.
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/Step 1: Compact the keyspace to revision \d+: compacted to revision \d+/);
    for (const [i, m] of order.entries()) expect(thread).toMatch(new RegExp(`Step ${i + 2}: Defragment ${m} [^:]*: defragmented ${m} `));
    expect(thread).toMatch(/Step 5: Disarm the NOSPACE alarm: disarmed NOSPACE on m\d/);
    expect(thread).toMatch(/Step 6: Verify writes work and the cluster is healthy: a write went through/);
    const redis = connectRedis(t.config.settings.redisUrl);
    try {
      const store = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
      const incident = (await store.current('CINCIDENT'))!;
      const timeline = (await store.entries(incident.id)).map((e) => e.text).join('\n');
      expect(timeline).toMatch(/Step 1 \(Compact the keyspace to revision \d+\) started under the approval by <@UBOB>/);
      for (const m of order) expect(timeline).toMatch(new RegExp(`defragmented ${m} in [0-9.]+ s`));
      expect(timeline).toContain('disarmed NOSPACE');
    } finally {
      redis.disconnect();
    }
  });

  it('asked again on a healthy cluster, the leader changing after the plan: leadership is moved off a member before its turn, so the leader still goes last', async () => {
    const since = t.slack.lastSeq;
    await t.command('defrag lab', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Compact and defragment lab/.test(String(r.body.text)), 30_000, since);
    const ts = plan.ts!;
    expect(textOf(latest(t.slack, ts))).toContain('No alarm is raised');
    const order = [...textOf(latest(t.slack, ts)).matchAll(/Defragment (m\d) \(/g)].map((m) => m[1]!);
    // The world moves after the plan: the first follower of the plan becomes leader (etcdctl move-leader, sent to the leader).
    const members = await t.lab.memberList();
    const leaderHex = await t.lab.leaderHex();
    const leader = members.find((m) => m.id === leaderHex)!;
    const first = members.find((m) => m.name === order[0])!;
    await t.lab.etcdctl(['move-leader', first.id], [leader.client]);
    expect(await t.lab.leaderHex()).toBe(first.id);
    const before = Object.fromEntries(order.map((m) => [m, defragTimes(t, m).length]));

    const gate = await waitForGate(t.slack, ts, 0);
    expect(await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: gate.blockId, value: gate.approve })).responseUrl)).toContain('Approved step 1');
    await waitForRunStatus(t.slack, ts, 'DONE');
    const thread = threadOf(t.slack, ts).join('\n');
    // m-first led when its turn came, with two members still to do: it handed leadership over first.
    expect(thread).toMatch(new RegExp(`Step 2: Defragment ${order[0]} \\(a follower\\): defragmented ${order[0]} \\(it led; leadership moved to m\\d first\\)`));
    expect(thread).toMatch(/Step 5: Disarm the NOSPACE alarm: no NOSPACE alarm is raised: nothing to disarm/);
    // Each member defragmented once more, in the plan's order, never two at once.
    const latestEnd = order.map((m) => {
      const times = defragTimes(t, m);
      expect(times, m).toHaveLength(before[m]! + 1);
      return times[times.length - 1]!;
    });
    expect([...latestEnd].sort((a, b) => a - b)).toEqual(latestEnd);
    expect((await t.lab.etcdctl(['endpoint', 'health'], t.lab.endpoints, true)).code).toBe(0);
  });

  it('bad input and a member down get a clear answer with what to type instead; nothing is planned', async () => {
    expect(ackText((await t.command('defrag nope')).body)).toContain('Unknown cluster `nope`. Known clusters: `lab`.\nUsage: `/etcd defrag [cluster]`');
    expect(ackText((await t.command('defrag lab m1')).body)).toContain('unexpected argument "m1"');
    expect(ackText((await t.command('defrag --force')).body)).toContain('unknown option "--force"');
    expect(ackText((await t.command('defrag', { user: 'UEVE' })).body)).toContain('you need the *destroy* role');

    await t.lab.stopMember('m3');
    try {
      const since = t.slack.lastSeq;
      await t.command('defrag', { user: 'UALICE' });
      const refused = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /defrag/.test(String(r.body.text)), 30_000, since);
      expect(String(refused.body.text)).toMatch(/^\/etcd defrag lab refused: m3 \([0-9a-f]+\) does not answer\. .*`\/etcd replace m3 lab` first, then `\/etcd defrag lab`\./);
    } finally {
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  });
});
