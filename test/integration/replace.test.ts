import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import { ackText } from '../../src/lab/signed-requests.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { metricSample } from '../support/metrics.js';
import { answerAt, latest, textOf, threadOf, waitForGate, waitForRunStatus, type Buttons } from '../support/slack-view.js';

// Alice asks; Bob and Carol may approve; Eve may not.
const ROLES = { read: ['*'], operate: ['*'], destroy: ['UALICE', 'UBOB'], approve: ['UBOB', 'UCAROL'] };

describe('/etcd replace against the lab', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('replace', 34, { roles: ROLES });
  });
  afterAll(async () => {
    await t?.stop();
  });

  async function planFor(text: string, user = 'UALICE'): Promise<{ ts: string; runId: string; plan: SlackRecord }> {
    const since = t.slack.lastSeq;
    const res = await t.command(text, { user });
    expect(res.status).toBe(200);
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace \S+ in lab/.test(String(r.body.text)), 30_000, since);
    const runId = /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]!;
    return { ts: plan.ts!, runId, plan };
  }

  const click = (user: string, ts: string, b: Buttons, which: 'approve' | 'reject', channel?: string) =>
    t.click({ user, channel, messageTs: ts, actionId: which === 'approve' ? 'medic_approve' : 'medic_reject', blockId: b.blockId, value: which === 'approve' ? b.approve : b.reject });

  async function approveAs(user: string, ts: string, step: number): Promise<string> {
    const b = await waitForGate(t.slack, ts, step);
    return answerAt(t.slack, (await click(user, ts, b, 'approve')).responseUrl);
  }

  it('replaces a member whose disk broke: three healthy voters after, every key kept, old data dir aside', async () => {
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/before/k${i}`, `v${i}`]);
    const oldM3 = (await t.lab.memberList()).find((m) => m.name === 'm3')!.id;
    // The fault: m3's database is destroyed and its etcd crash-loops under the kubelet.
    await t.lab.corruptMember('m3');
    const counts = () =>
      Promise.all(
        ['etcd_medic_runs_total{runbook="replace",state="done"}', 'etcd_medic_step_seconds_count{kind="member-remove",outcome="done"}', 'etcd_medic_approval_wait_seconds_count{runbook="replace",decision="approve"}'].map(metricSample),
      );
    const before = await counts();

    const { ts, runId } = await planFor('replace m3');
    const planText = textOf(latest(t.slack, ts));
    expect(planText).toContain(`cluster.memberRemove(${oldM3})`);
    expect(planText).toContain('--initial-cluster-state=existing');
    expect(planText).toMatch(/Approvers:\* <@UBOB>, <@UCAROL>, never the requester/);

    // Step 1 (snapshot) runs by itself; step 2 (member remove) waits for a second person.
    expect(await approveAs('UBOB', ts, 1)).toContain('Approved step 2');
    expect(await approveAs('UCAROL', ts, 2)).toContain('Approved step 3');
    const done = await waitForRunStatus(t.slack, ts, 'DONE');
    expect(done).toContain('approved by <@UBOB>');
    expect(done).toContain('approved by <@UCAROL>');

    const members = await t.lab.memberList();
    expect(members.map((m) => [m.name, m.status, m.learner])).toEqual(
      expect.arrayContaining([
        ['m1', 'started', false],
        ['m2', 'started', false],
        ['m3', 'started', false],
      ]),
    );
    expect(members).toHaveLength(3);
    expect(members.find((m) => m.name === 'm3')!.id).not.toBe(oldM3);
    expect((await t.lab.etcdctl(['endpoint', 'health'], t.lab.endpoints, true)).code).toBe(0);
    // Every key written before the fault, read from the new m3 itself.
    const m3 = t.lab.host('m3');
    const { stdout } = await t.lab.etcdctl(['get', '/before/', '--prefix', '--keys-only', '--consistency=s'], [m3.clientUrl]);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(20);
    // The broken data dir is kept aside, named for the run; the snapshot is on disk.
    const aside = `${m3.dataDir}.before-${runId}`;
    expect(readFileSync(join(aside, 'member/snap/db'))[0]).toBe(0x5a);
    expect(existsSync(join(dirname(m3.manifestsDir), 'etcd-medic-aside', `etcd.yaml.${runId}`))).toBe(true);
    const backupId = /→ backup (\d{4}-\d{2}-\d{2}_\d{6})/.exec(planText)![1]!;
    const backups = readdirSync(join(t.lab.opts.root, 'backups', 'lab'));
    expect(backups).toEqual(expect.arrayContaining([`snapshot_${backupId}.db`, `static_kuberesources_${backupId}.tar.gz`, `backup_${backupId}.json`]));
    // The thread tells each step's outcome, in order.
    const thread = threadOf(t.slack, ts).join('\n');
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) expect(thread).toMatch(new RegExp(`Step ${n}: `));
    expect(thread).toContain(`Run \`${runId}\` finished`);
    // The lab's peer URLs are IP literals: the verify step says there is no DNS name to check, and the run ends with no caveat.
    expect(planText).toContain("each DNS name in a peer URL resolves to its member's address in the inventory");
    expect(thread).toMatch(/:white_check_mark: Step 8: Verify every member healthy and the revision intact: HEALTHY: 3 voters, .*; peer URLs on IP addresses, no DNS name to check/);
    expect(thread).toContain(`:tada: Run \`${runId}\` finished: every step done.`);
    expect(thread).not.toContain(':warning:');
    expect(textOf(latest(t.slack, ts)).split('\n')[0]).toMatch(/: DONE$/);
    // /metrics: one more replace done, its member removal timed, two approvals waited for.
    expect((await counts()).map((n, i) => n - before[i]!)).toEqual([1, 1, 2]);
  });

  it('refuses self-approval, non-approvers, other channels, stale and expired buttons; a double click runs once; reject ends the run', async () => {
    const { ts, runId } = await planFor('replace m3 --force');
    expect(textOf(latest(t.slack, ts))).toContain('FORCED');
    const b1 = await waitForGate(t.slack, ts, 1);

    const refusals: [string, string, string][] = [];
    const tryClick = async (label: string, user: string, b: Buttons, which: 'approve' | 'reject', channel?: string) =>
      refusals.push([label, user, await answerAt(t.slack, (await click(user, ts, b, which, channel)).responseUrl)]);
    await tryClick('self-approval', 'UALICE', b1, 'approve');
    await tryClick('not an approver', 'UEVE', b1, 'approve');
    await tryClick('another channel', 'UBOB', b1, 'approve', 'CELSEWHERE');
    await tryClick('reject by a stranger', 'UEVE', b1, 'reject');
    expect(refusals.map(([l, , a]) => [l, a])).toEqual([
      ['self-approval', ':no_entry: Not approved: you asked for this run; a destructive step needs a second person to approve it.'],
      ['not an approver', ':no_entry: Not approved: you need the *approve* role (workspace.roles.approve in the inventory).'],
      ['another channel', `:no_entry: Not approved: run \`${runId}\` belongs to <#CINCIDENT>; approve it there.`],
      ['reject by a stranger', ':no_entry: Not rejected: only approvers or <@UALICE> may reject: you need the *approve* role (workspace.roles.approve in the inventory).'],
    ]);

    // A forged button value and an action ID that is not ours do nothing either.
    const forged = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: b1.blockId, value: '{"r":"r-00000000","s":1,"h":"x"}' });
    expect(await answerAt(t.slack, forged.responseUrl)).toContain("not one of this bot's current buttons");
    const unknown = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'format_disk', blockId: b1.blockId, value: b1.approve });
    expect(await answerAt(t.slack, unknown.responseUrl)).toContain('not one this bot knows');

    // The approval window passes (moved back in Redis: the fault is time).
    const { RunStore } = await import('../../src/runbook/store.js');
    const { connectRedis } = await import('../../src/queue/redis.js');
    const redis = connectRedis(t.config.settings.redisUrl);
    const store = new RunStore(redis, t.config.settings.queuePrefix);
    await store.update(runId, (r) => ({ ...r, gate: { ...r.gate!, expiresAt: new Date(Date.now() - 1000).toISOString() } }));
    const expired = await answerAt(t.slack, (await click('UBOB', ts, b1, 'approve')).responseUrl);
    expect(expired).toContain('the approval window closed');
    // The bot re-checks the cluster and asks again, with new buttons; the old ones are void.
    const b2 = await waitForGate(t.slack, ts, 1, 2);
    expect(b2.approve).not.toBe(b1.approve);
    expect(await answerAt(t.slack, (await click('UBOB', ts, b1, 'approve')).responseUrl)).toContain('older version of the plan');

    // Bob and Carol click at the same moment: one approval counts, the step runs once.
    const [x, y] = await Promise.all([click('UBOB', ts, b2, 'approve'), click('UCAROL', ts, b2, 'approve')]);
    const answers = [await answerAt(t.slack, x.responseUrl), await answerAt(t.slack, y.responseUrl)].sort();
    expect(answers[0]).toMatch(/^:information_source: Step 2 was already approved by <@U(BOB|CAROL)>; it runs once\.$/);
    expect(answers[1]).toMatch(/^:white_check_mark: Approved step 2/);

    // Carol rejects step 3: the run ends, saying what was done and what was not.
    const b3 = await waitForGate(t.slack, ts, 2);
    const rejects = () => Promise.all(['etcd_medic_runs_total{runbook="replace",state="rejected"}', 'etcd_medic_approval_wait_seconds_count{runbook="replace",decision="reject"}'].map(metricSample));
    const before = await rejects();
    expect(await answerAt(t.slack, (await click('UCAROL', ts, b3, 'reject')).responseUrl)).toContain('Rejected step 3');
    const ended = await waitForRunStatus(t.slack, ts, 'REJECTED');
    expect(ended).toContain('rejected by <@UCAROL>');
    expect((await rejects()).map((n, i) => n - before[i]!)).toEqual([1, 1]);
    const thread = threadOf(t.slack, ts);
    expect(thread.filter((l) => /Step 2: Remove m3 from the member list: removed/.test(l))).toHaveLength(1);
    expect(thread.join('\n')).toContain('Done: 1. Take and verify a snapshot; 2. Remove m3 from the member list. Not done: 3. Stop etcd on m3');
    // A click on the finished run is refused.
    expect(await answerAt(t.slack, (await click('UBOB', ts, b3, 'approve')).responseUrl)).toContain(`run \`${runId}\` has already ended (rejected)`);
    redis.disconnect();

    // m3 was removed and never re-added: replace it (it is no longer in the member list) to heal the lab.
    const again = await planFor('replace m3');
    expect(textOf(latest(t.slack, again.ts))).not.toContain('memberRemove');
    expect(await approveAs('UBOB', again.ts, 1)).toContain('Approved step 2');
    await waitForRunStatus(t.slack, again.ts, 'DONE');
    expect((await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner)).toHaveLength(3);
  });

  it('voids an approval when the cluster changed before the step ran, and asks again against the new state', async () => {
    const { ts, runId } = await planFor('replace m3 --force');
    const b = await waitForGate(t.slack, ts, 1);
    // The world moves between approval and execution: m2 goes down.
    await t.lab.stopMember('m2');
    try {
      expect(await answerAt(t.slack, (await click('UBOB', ts, b, 'approve')).responseUrl)).toContain('Approved step 2');
      const b2 = await waitForGate(t.slack, ts, 1, 2);
      expect(b2.approve).not.toBe(b.approve);
      const thread = threadOf(t.slack, ts).join('\n');
      expect(thread).toContain('The cluster changed since the approval (m2 became unreachable): the approval is void');
      // Nothing was removed.
      expect((await t.lab.etcdctl(['member', 'list'], [t.lab.host('m1').clientUrl])).stdout.split('\n').filter(Boolean)).toHaveLength(3);
      await t.command(`cancel ${runId}`, { user: 'UBOB' });
      await waitForRunStatus(t.slack, ts, 'CANCELLED');
    } finally {
      await t.lab.startMember('m2');
      await t.lab.waitHealthy();
    }
  });

  it('cancel stops a run waiting for approval and says what was done', async () => {
    const { ts, runId } = await planFor('replace m2 --force');
    await waitForGate(t.slack, ts, 1);
    const res = await t.command(`cancel ${runId}`, { user: 'UBOB' });
    expect(ackText(res.body)).toContain(`Cancelling run \`${runId}\``);
    const ended = await waitForRunStatus(t.slack, ts, 'CANCELLED');
    expect(ended).toContain('cancelled by <@UBOB>');
    expect(threadOf(t.slack, ts).join('\n')).toContain('Done: 1. Take and verify a snapshot. Not done: 2. Remove m2 from the member list');
    expect((await t.lab.memberList()).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
  });

  it('preflight refuses what would lose quorum, a second run on the same cluster, and bad input', async () => {
    const refusal = async (text: string) => {
      const since = t.slack.lastSeq;
      await t.command(text);
      return textOf(await t.slack.waitFor((r) => r.method === 'chat.postMessage' && !r.body.thread_ts && String(r.body.text).includes('refused'), 30_000, since));
    };
    expect(await refusal('replace m9')).toContain('no member "m9" in lab');
    expect(await refusal('replace m1')).toContain('is healthy');

    // Hold the cluster with a run waiting for approval: a second replace is refused.
    const held = await planFor('replace m1 --force');
    expect(await refusal('replace m2 --force')).toContain(`run \`${held.runId}\` is already working on lab`);
    await t.command(`cancel ${held.runId}`, { user: 'UBOB' });
    await waitForRunStatus(t.slack, held.ts, 'CANCELLED');

    await t.lab.killMember('m2');
    await t.lab.killMember('m3');
    try {
      expect(await refusal('replace m3')).toContain('the cluster has no quorum');
    } finally {
      await t.lab.startMember('m2');
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }

    expect(ackText((await t.command('replace')).body)).toContain('Usage: `/etcd replace <member> [cluster] [--force]`');
    expect(ackText((await t.command('replace m3 --yolo')).body)).toContain('unknown option "--yolo"');
    expect(ackText((await t.command('replace m3;rm')).body)).toContain('is not a member name, hex ID or host');
    expect(ackText((await t.command('replace m3', { user: 'UEVE' })).body)).toContain('you need the *destroy* role');
    expect(ackText((await t.command('cancel 42')).body)).toContain('is not a run ID');
  });
});
