import type { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sealPlan, signApproval } from '../../src/approvals/sign.js';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import type { JobEnvelope } from '../../src/queue/jobs.js';
import { openQueue } from '../../src/queue/queue.js';
import { connectRedis } from '../../src/queue/redis.js';
import { newRun } from '../../src/runbook/new-run.js';
import { gateHash } from '../../src/runbook/hash.js';
import { RunStore } from '../../src/runbook/store.js';
import { loadConfig } from '../../src/config/load.js';
import { startWorker, type MainProcess } from '../support/main-process.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, approveStep, planReplace, textOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };

describe('orphaned locks and runs nobody works on', () => {
  let t: MedicLab;
  let redis: ReturnType<typeof connectRedis>;
  let store: RunStore;
  let incidents: IncidentStore;
  let queue: Queue<JobEnvelope>;
  let prefix: string;
  const workers: MainProcess[] = [];

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes, so that one can die and each test sets its sweep.
    t = await startMedicLab('orphans', 60, { roles: ROLES, botOnly: true });
    prefix = t.config.settings.queuePrefix;
    redis = connectRedis(t.env.REDIS_URL!);
    store = new RunStore(redis, prefix);
    incidents = new IncidentStore(redis, prefix, t.config.settings.hmacKey);
    queue = openQueue(redis, prefix);
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await w.exit;
    }
  });
  afterAll(async () => {
    await queue?.close();
    redis?.disconnect();
    await t?.stop();
  });

  const worker = (sweepMs: number) => {
    const w = startWorker({ ...t.env, WORKER_LOCK_MS: '2000', MEDIC_SWEEP_MS: String(sweepMs), LOG_LEVEL: 'warn' });
    workers.push(w);
    return w;
  };
  const incident = async () => (await incidents.current('CINCIDENT'))!;
  const answer = async (text: string) => answerAt(t.slack, (await t.command(text, { user: 'UALICE' })).responseUrl);

  it('`/etcd cancel <run-id>` releases a lock whose run does not exist, on the timeline', async () => {
    worker(3_600_000); // the sweeper stays out of this one
    expect(await answer('incident start orphaned lock')).toMatch(/opened/);
    // The fault: a crash (in an older version) left the cluster's lock naming a run that was never stored.
    await redis.set(`${prefix}:lock:lab`, 'r-deadbeef');

    const since = t.slack.lastSeq;
    await t.command('replace m3', { user: 'UALICE' });
    const refused = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /refused/.test(String(r.body.text)), 30_000, since);
    expect(textOf(refused)).toContain('run `r-deadbeef` is already working on lab');

    expect(await answer('cancel r-deadbeef')).toMatch(/Run `r-deadbeef` does not exist but still held the lock of lab: released/);
    expect(await store.lockHolder('lab')).toBeNull();
    const entries = await incidents.entries((await incident()).id);
    expect(entries.some((e) => e.actor === 'UALICE' && e.text.includes('Released the lock of lab held by run `r-deadbeef` (that run does not exist)'))).toBe(true);
    // A second cancel finds nothing left to release, and says so.
    expect(await answer('cancel r-deadbeef')).toMatch(/There is no run `r-deadbeef`/);
  });

  it('the sweeper releases, by itself, a lock whose run does not exist', async () => {
    await redis.set(`${prefix}:lock:lab`, 'r-0dd10c4e');
    worker(500);
    await waitFor('the sweeper to release the lock', async () => (await store.lockHolder('lab')) === null, 30_000, 200);
  });

  it('a step whose job was lost is queued again by the sweeper, and the run ends healthy', async () => {
    const first = worker(500);
    const { ts, runId } = await planReplace(t, 'm3', 'UALICE');

    // No worker while the approval is given (the one there finished its job first), and then the
    // fault: the step job the click queued is lost.
    const ofRun = async (states: ('active' | 'waiting' | 'delayed' | 'prioritized')[]) => (await queue.getJobs(states)).filter((j) => j?.data.request.name === 'step' && j.data.request.data.runId === runId);
    await waitFor('the worker to finish the job that opened the gate', async () => (await ofRun(['active', 'waiting', 'delayed', 'prioritized'])).length === 0, 30_000, 100);
    first.child.kill('SIGKILL');
    await first.exit;
    await approveStep(t, ts, 1, 'UBOB');
    const queued = await ofRun(['waiting', 'delayed', 'prioritized']);
    expect(queued.length).toBeGreaterThan(0);
    for (const j of queued) await j.remove();
    expect(await ofRun(['active', 'waiting', 'delayed', 'prioritized'])).toEqual([]);
    expect((await store.get(runId))!.records[1]!.status).toBe('approved');

    worker(500);
    const g2 = await waitForGate(t.slack, ts, 2, 1, 60_000);
    await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: g2.blockId, value: g2.approve })).responseUrl);
    await waitForRunStatus(t.slack, ts, 'DONE', 120_000);
    const entries = await incidents.entries((await incident()).id);
    expect(entries.some((e) => e.runId === runId && e.text.includes(`Step 2 of run \`${runId}\` had no worker on it (its job was lost); queued it again.`))).toBe(true);
    expect(await store.lockHolder('lab')).toBeNull();
    expect((await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner)).toHaveLength(3);
  });

  it('a step job that gives up ends its run failed, says why in the channel and on the timeline, and frees the cluster', async () => {
    worker(500);
    const inc = await incident();
    const { inventory } = loadConfig(t.env);
    const state = { members: [], leaderHex: null, raftIndex: 0, revision: 0, at: new Date().toISOString() };
    // A run on a cluster this worker does not know: its approved step cannot even look at the cluster.
    const planned = newRun(inventory, { runId: 'r-0000ffff', runbook: 'replace', title: 'Replace x in ghost', cluster: 'ghost', target: 'x', steps: [{ kind: 'member-remove', title: 'Remove x', destructive: true, operation: 'member remove x', params: { idHex: 'a9', name: 'x', peerUrl: 'https://10.0.0.9:2380' } }], plannedState: state, requestedBy: 'UALICE', channelId: 'CINCIDENT' }, new Date(Date.now() - 60_000));
    // As the worker stores a run: bound to its incident and its plan signed.
    const run = sealPlan(t.config.settings.hmacKey, { ...planned, incidentId: inc.id });
    // Approved as a click would: signed with the workers' key, so it is the step itself that cannot run.
    const approvedAt = new Date().toISOString();
    const hash = gateHash(run, 0, state, 1); // as the engine computes it: the approval is checked against it
    run.records[0] = { status: 'approved', approvedBy: 'UBOB', approvedAt, approvalSig: signApproval(t.config.settings.hmacKey, { runId: run.runId, step: 0, gateHash: hash, approver: 'UBOB', at: approvedAt }) };
    run.gate = { step: 0, hash, state, openedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString(), round: 1 };
    expect(await store.createLocked(run)).toBeNull();
    const since = t.slack.lastSeq;
    const env: JobEnvelope = { request: { name: 'step', data: { runId: run.runId, index: 0 } }, requestId: `${run.runId}-s0`, userId: 'UALICE', channelId: 'CINCIDENT', requestedAt: new Date().toISOString() };
    // Two tries, quickly: the same path as a step job's 600 tries, without the wait.
    await queue.add('step', env, { jobId: env.requestId, attempts: 2, backoff: { type: 'fixed', delay: 200 } });

    await waitFor('the run to end failed', async () => (await store.get(run.runId))!.status === 'failed', 30_000, 200);
    const ended = (await store.get(run.runId))!;
    expect(ended.ended!.reason).toMatch(/step 1 \(Remove x\) could not be run: its job failed 2 time\(s\), last with: cluster ghost is not in this worker's inventory/);
    expect(await store.lockHolder('ghost')).toBeNull();
    const said = t.slack.messages((r) => r.seq > since && r.method === 'chat.postMessage').map(textOf).join('\n');
    expect(said).toContain("Step 1 (Remove x) hit an error: cluster ghost is not in this worker's inventory. It is retried");
    expect(said).toMatch(/Run `r-0000ffff` stopped: step 1 \(Remove x\) could not be run.*ghost is free again/);
    const entries = await incidents.entries(inc.id);
    expect(entries.some((e) => e.runId === run.runId && /hit an error/.test(e.text))).toBe(true);
    expect(entries.some((e) => e.runId === run.runId && /stopped: step 1/.test(e.text))).toBe(true);
  });
});
