import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import type { JobEnvelope } from '../../src/queue/jobs.js';
import { enqueueStep, QUEUE_NAME } from '../../src/queue/queue.js';
import { connectRedis } from '../../src/queue/redis.js';
import { RunStore } from '../../src/runbook/store.js';
import type { Run } from '../../src/runbook/types.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, latest, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

// UALICE may approve too: that is what makes swapping the requester in Redis worth trying.
const ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UALICE', 'UBOB'] };

describe('a completed destructive step replayed by someone who can write Redis (no HMAC key)', () => {
  let t: MedicLab;
  let redis: ReturnType<typeof connectRedis>;
  let runs: RunStore;
  let prefix: string;

  beforeAll(async () => {
    t = await startMedicLab('replay', 82, { roles: ROLES });
    redis = connectRedis(t.config.settings.redisUrl);
    prefix = t.config.settings.queuePrefix;
    runs = new RunStore(redis, prefix);
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  async function click(user: string, ts: string, step: number): Promise<string> {
    const g = await waitForGate(t.slack, ts, step);
    return answerAt(t.slack, (await t.click({ user, messageTs: ts, actionId: 'medic_approve', blockId: g.blockId, value: g.approve })).responseUrl);
  }

  async function queueStep(runId: string, index: number, tag: string): Promise<void> {
    const queue = new Queue<JobEnvelope>(QUEUE_NAME, { connection: redis, prefix });
    await enqueueStep(queue, runId, index, { userId: 'UBOB', channelId: 'CINCIDENT' }, tag);
    await queue.close();
  }

  /**
   * The fault: the run is written back to "step `index` is `status`", as it was before it ran, and put back among
   * active runs. Edited as JSON here, not with cjson in Redis: cjson writes an empty list back as `{}`, which
   * would change the plan (a fence's empty `unconfirmed`) besides the records.
   */
  async function rewind(runId: string, index: number, status: 'running' | 'approved'): Promise<void> {
    const key = `${prefix}:run:${runId}`;
    const raw = (await redis.get(key))!;
    const r = JSON.parse(raw) as Run;
    r.status = 'running';
    r.current = index;
    delete r.ended;
    delete r.attempt;
    r.records[index]!.status = status;
    for (let i = index + 1; i < r.records.length; i++) r.records[i] = { status: 'pending' };
    // Written only over the run as read (nothing else writes an ended run, but a change meanwhile is not overwritten).
    const done = await redis.eval(
      `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
       redis.call('SET', KEYS[1], ARGV[2]); redis.call('SADD', KEYS[2], ARGV[3]); return 1`,
      2,
      key,
      `${prefix}:runs:active`,
      raw,
      JSON.stringify(r),
      runId,
    );
    expect(done).toBe(1);
  }

  it('is refused before it acts: force-new-cluster is not forced again, the run fails on the record, the timeline says plan again', async () => {
    await t.command('incident start replayed steps', { user: 'UALICE' });
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/replay/k${i}`, `v${i}`]);
    // The fault that makes a restore-quorum right: two of three members die and their data dirs are gone.
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    }
    const since = t.slack.lastSeq;
    await t.command('restore-quorum', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Restore quorum of lab/.test(String(r.body.text)), 60_000, since);
    const ts = plan.ts!;
    const runId = (await waitForGate(t.slack, ts, 1)).blockId.match(/r-[0-9a-f]{8}/)![0];

    // The fault: UALICE asked for the run and may approve; someone who can write Redis names another requester,
    // and UALICE clicks Approve on her own plan.
    await runs.update(runId, (r) => ({ ...r, requestedBy: 'UCAROL' }));
    const own = await click('UALICE', ts, 1);
    expect(own).toContain('Not approved');
    expect(own).toContain('was changed in Redis after planning');
    expect((await runs.get(runId))!.records[1]!.status).toBe('awaiting_approval');
    await runs.update(runId, (r) => ({ ...r, requestedBy: 'UALICE' }));

    expect(await click('UBOB', ts, 1)).toContain('Approved step 2'); // fence m2, m3
    expect(await click('UBOB', ts, 2)).toContain('Approved step 3'); // force-new-cluster on m1
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    const voters = async () => (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort();
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    const m1 = t.lab.host('m1');
    const manifest = readFileSync(join(m1.manifestsDir, 'etcd.yaml'), 'utf8');
    const pid = m1.supervisor.pid();
    expect(pid).not.toBeNull();

    // The fault: step 3 (force-new-cluster), done, is written back to "running" (a step whose worker died
    // mid-step, which a worker resumes) and its job queued again. Its old approval still verifies.
    await rewind(runId, 2, 'running');
    await queueStep(runId, 2, 'replay-running');
    const failed = await waitFor('the replayed run to end', async () => {
      const r = await runs.get(runId);
      return r && r.status !== 'running' ? r : null;
    }, 60_000);
    expect(failed.status).toBe('failed');
    expect(failed.ended!.reason).toContain('step 3 refused to run');
    // The message said DONE until now; the run's end puts back what the failed step may have left (an SSH look
    // on m1) before it redraws the message, so wait for the redraw rather than read the header as it is.
    await waitFor('the plan message to say FAILED', async () => (textOf(latest(t.slack, ts)).split('\n')[0]!.endsWith(': FAILED') ? true : null), 30_000);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/Step 3 \(Start m1 with --force-new-cluster, then without it\) refused to run: step 3 already ran: the signed timeline says it ended \(done\) at \S+/);
    expect(thread).toContain('Nothing was done by this step');
    expect(thread).toContain('plan again');
    // Nothing was done twice on the lab: m1 was not restarted, its manifest is as it was, three voters, every key.
    expect(m1.supervisor.pid()).toBe(pid);
    expect(readFileSync(join(m1.manifestsDir, 'etcd.yaml'), 'utf8')).toBe(manifest);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    const { stdout } = await t.lab.etcdctl(['get', '/replay/', '--prefix', '--keys-only']);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(10);

    // The same step written back to "approved" (its approval still signed): the approval was used, it is not used twice.
    await rewind(runId, 2, 'approved');
    await queueStep(runId, 2, 'replay-approved');
    const again = await waitFor('the second replay to end', async () => {
      const r = await runs.get(runId);
      return r && r.status !== 'running' ? r : null;
    }, 60_000);
    expect(again.status).toBe('failed');
    expect(again.records[2]!.status).not.toBe('awaiting_approval');
    await waitFor('the refusal in the thread', () => threadOf(t.slack, ts).some((l) => /refused to run: the approval of step 3 by <@UBOB> at \S+ was already used/.test(l)), 20_000);
    expect(m1.supervisor.pid()).toBe(pid);
    expect(readFileSync(join(m1.manifestsDir, 'etcd.yaml'), 'utf8')).toBe(manifest);
    expect(textOf(latest(t.slack, ts)).split('\n')[0]).toMatch(/: FAILED$/);

    // On the record: the signed timeline holds the step's start and end and both refusals, and it is intact.
    const store = new IncidentStore(redis, prefix, t.config.settings.hmacKey);
    const inc = (await store.current('CINCIDENT'))!;
    const { entries, chain } = await store.readVerified(inc.id);
    expect(chain.ok).toBe(true);
    const mine = entries.filter((e) => e.runId === runId);
    expect(mine.filter((e) => /already ran|already used/.test(e.text) && /plan again/.test(e.text))).toHaveLength(2);
    expect(mine.filter((e) => /Start m1 with --force-new-cluster, then without it\) started/.test(e.text))).toHaveLength(1);
    expect(await runs.lockHolder('lab')).toBeNull();
  });
});
