import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { parseInventory } from '../../src/config/load.js';
import type { ClusterConfig, Inventory } from '../../src/config/schema.js';
import { EtcdPool, openEndpoint } from '../../src/etcd/pool.js';
import { startLab, type Lab } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import { createLogger } from '../../src/log.js';
import type { StepExecutor } from '../../src/runbook/engine.js';
import { planDefrag } from '../../src/runbook/defrag-plan.js';
import type { Run, StepKind, StepOf } from '../../src/runbook/types.js';
import { viewCluster } from '../../src/worker/cluster-view.js';
import { stepExecutors } from '../../src/worker/executors.js';
import { stepOf } from '../support/steps.js';

/** What one member's etcd logged about defragments: each call received, each start on the database and each end, in ms since the epoch. */
function defragLog(lab: Lab, member: string): { calls: number[]; starts: number[]; ends: number[] } {
  const file = `${lab.host(member).logDir}/etcd.log`;
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('{')) : [];
  const at = (msg: string) => lines.filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => Date.parse(JSON.parse(l).ts as string));
  return { calls: at('starting defragment'), starts: at('defragmenting'), ends: at('defragmented') };
}

describe('/etcd defrag steps against a member whose defragment outlived its caller, and a worker that may no longer act', () => {
  let lab: Lab;
  let inventory: Inventory;
  let cluster: ClusterConfig;
  let executors: Record<StepKind, StepExecutor>;
  const pool = new EtcdPool();
  const log = createLogger('silent');

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'defrag-busy'), subnet: 150 });
    inventory = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath);
    cluster = inventory.clusters[0]!;
    executors = stepExecutors(inventory, pool, new DirectoryBackupStore(inventory.backups.dir), log);
  }, 120_000);
  afterAll(async () => {
    await pool.close();
    await lab?.stop();
  });

  /**
   * A big database with half of it free: 100 keys of 1 MB written twice, then compacted. Its
   * defragment copies 100 MB, long enough (a second or so here) to act while it runs.
   */
  async function inflate(): Promise<void> {
    const client = openEndpoint(cluster, lab.endpoints[0]!, 30_000);
    try {
      const value = 'y'.repeat(1024 * 1024);
      for (let round = 0; round < 2; round++) for (let i = 0; i < 100; i++) await client.put(`/big/k${i}`).value(value);
      const { header } = await client.kv.range({ key: Buffer.from('/big/k0') });
      await client.kv.compact({ revision: header.revision, physical: true });
    } finally {
      client.close();
    }
  }

  /** The run `/etcd defrag` plans for the lab now. */
  async function planNow(runId: string): Promise<Run> {
    const view = await viewCluster(cluster, pool);
    const out = planDefrag(inventory, cluster, view.report, view.state, { runId, requestedBy: 'UALICE', channelId: 'C' }, new Date());
    if (!out.ok) throw new Error(out.reason);
    return out.run;
  }

  it('a worker killed during a defragment: its resumed step waits for the defragment etcd still runs and does not run a second; the next member waits too', { timeout: 180_000 }, async () => {
    await inflate();
    const run = await planNow('r-busy0001');
    const [a, b] = [stepOf(run.steps[1], 'defrag-member').params.name, stepOf(run.steps[2], 'defrag-member').params.name];
    const beforeA = defragLog(lab, a);
    const beforeB = defragLog(lab, b);

    // The fault: the worker's defragment call on A ends after 50 ms (its worker killed, or its deadline passed); etcd goes on defragmenting A.
    const impatient = openEndpoint(cluster, lab.host(a).clientUrl, 50);
    await expect(impatient.maintenance.defragment()).rejects.toThrow(/deadline/i);
    impatient.close();
    await waitFor(`${a} to start defragmenting`, async () => defragLog(lab, a).starts.length > beforeA.starts.length, 10_000, 5);

    // What etcd does meanwhile: A answers nothing, not even its status, until the defragment ends, so every check sees it as not answering.
    const sawBusy = Date.now();
    const probe = openEndpoint(cluster, lab.host(a).clientUrl, 300);
    const silent = await Promise.all(
      [probe.maintenance.status(), probe.kv.range({ key: Buffer.from([0]), limit: 1, serializable: true })].map((c) => c.then(() => ({ answeredAt: Date.now() }), (e: Error) => ({ error: e.message }))),
    );
    probe.close();
    // A second worker resumes A's step (its second try), and a late job runs B's step, both while A is being defragmented.
    const resumed: Run = { ...run, records: run.records.map((r, i) => (i === 1 ? { ...r, attempts: 2 } : r)) };
    const [ra, rb] = await Promise.all([executors['defrag-member'](resumed, run.steps[1]!, 1), executors['defrag-member'](run, run.steps[2]!, 2)]);

    const afterA = defragLog(lab, a);
    const afterB = defragLog(lab, b);
    const aEnd = afterA.ends[afterA.ends.length - 1]!;
    // The window was real: the checks ran before etcd finished A's defragment.
    expect(afterA.ends.length).toBe(beforeA.ends.length + 1);
    expect(sawBusy).toBeLessThan(aEnd);
    // Each call ran into its deadline, or was answered only once the defragment had ended (etcd logs the end before it lets go of the database).
    for (const r of silent) {
      if ('error' in r) expect(r.error).toMatch(/deadline/i);
      else expect(r.answeredAt).toBeGreaterThanOrEqual(aEnd);
    }
    // A was defragmented once: the resumed step found it done once the defragment ended.
    expect(afterA.calls.length).toBe(beforeA.calls.length + 1);
    expect(ra.skipped).toBe(true);
    expect(ra.summary).toContain(`${a} was defragmented by this step's earlier try`);
    // B was defragmented, but only after A's defragment ended: never two members at once.
    expect(rb.skipped).toBeFalsy();
    expect(afterB.starts.length).toBe(beforeB.starts.length + 1);
    expect(afterB.starts[afterB.starts.length - 1]!).toBeGreaterThanOrEqual(aEnd);
    expect((await lab.etcdctl(['endpoint', 'health'], lab.endpoints, true)).code).toBe(0);
  });

  it('a worker that lost its run lease, or whose run was asked to stop, neither compacts nor moves the leader nor defragments', { timeout: 120_000 }, async () => {
    // Something to compact: a key written before the plan, so the revision before the planned one is still readable.
    await lab.etcdctl(['put', '/late', 'v1']);
    const run = await planNow('r-busy0002');
    const gone = new AbortController();
    gone.abort(new Error('run lease lost'));
    const before = Object.fromEntries(['m1', 'm2', 'm3'].map((m) => [m, defragLog(lab, m).calls.length]));
    const leaderHex = await lab.leaderHex();
    const revision = stepOf(run.steps[0], 'compact').params.revision;

    // The fault: the lease went to another worker while this one waited (Redis gone for longer than the lease).
    await expect(executors.compact(run, run.steps[0]!, 0, undefined, gone.signal)).rejects.toThrow(/lost the run lease before compacting/);
    await expect(executors['defrag-member'](run, run.steps[1]!, 1, undefined, gone.signal)).rejects.toThrow(/lost the run lease before defragmenting/);
    // The leader's step with members still after it would hand leadership over first: not even that.
    const leaderStep = run.steps.findIndex((s) => s.kind === 'defrag-member' && stepOf(s, 'defrag-member').params.role === 'leader');
    const leaderSpec = stepOf(run.steps[leaderStep], 'defrag-member');
    const early: StepOf<'defrag-member'> = { ...leaderSpec, params: { ...leaderSpec.params, before: [], after: ['m9'] } };
    await expect(executors['defrag-member'](run, early, 1, undefined, gone.signal)).rejects.toThrow(/lost the run lease before moving the leadership/);
    // A stop request (cancel) that came while the step waited: nothing started either.
    await expect(executors['defrag-member'](run, run.steps[2]!, 2, gone.signal)).rejects.toThrow(/asked to stop/);

    expect(Object.fromEntries(['m1', 'm2', 'm3'].map((m) => [m, defragLog(lab, m).calls.length]))).toEqual(before);
    expect(await lab.leaderHex()).toBe(leaderHex);
    // Not compacted: the revision just before the planned one can still be read.
    const read = await lab.etcdctl(['get', '/late', `--rev=${revision - 1}`], undefined, true);
    expect(read.stderr).not.toContain('compacted');
    expect(read.code).toBe(0);
  });

  it('a resumed step whose member answers nothing for longer than a minute (as one defragmenting a multi-GB database for the earlier try does) waits for it rather than fail the run', { timeout: 240_000 }, async () => {
    const run = await planNow('r-busy0003');
    const a = stepOf(run.steps[1], 'defrag-member').params.name;
    const resumed: Run = { ...run, records: run.records.map((r, i) => (i === 1 ? { ...r, attempts: 2 } : r)) };
    const before = defragLog(lab, a).calls.length;
    const pid = lab.host(a).supervisor.pid()!;
    // The fault: A answers nothing for 65 s (its etcd stopped with SIGSTOP), longer than the minute the checks between defragments wait.
    process.kill(pid, 'SIGSTOP');
    let settled = false;
    const t0 = Date.now();
    const step = executors['defrag-member'](resumed, run.steps[1]!, 1).finally(() => {
      settled = true;
    });
    step.catch(() => undefined);
    try {
      await waitFor('65 s of silence, or the step to end', () => settled || Date.now() - t0 > 65_000, 75_000, 250);
      // Still waiting for A: a defragment of a big database takes minutes, and the run must not fail for it.
      expect(settled).toBe(false);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const res = await step;
    expect(res.skipped).toBeFalsy();
    expect(res.summary).toMatch(new RegExp(`^defragmented ${a} `));
    expect(defragLog(lab, a).calls.length).toBe(before + 1);
    await lab.waitHealthy();
  });
});
