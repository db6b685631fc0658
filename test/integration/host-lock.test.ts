import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { parseInventory } from '../../src/config/load.js';
import type { Inventory } from '../../src/config/schema.js';
import { EtcdPool } from '../../src/etcd/pool.js';
import { startLab, type Lab } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import { createLogger } from '../../src/log.js';
import { connectRedis } from '../../src/queue/redis.js';
import { processStep, type EngineDeps, type StepExecutor } from '../../src/runbook/engine.js';
import { newRun } from '../../src/runbook/new-run.js';
import { memoryLedger } from '../support/ledger.js';
import { hostPlaces } from '../../src/runbook/restore-quorum-plan.js';
import { RunStore } from '../../src/runbook/store.js';
import type { ObservedState, Run, StepKind, StepSpec } from '../../src/runbook/types.js';
import { stepExecutors } from '../../src/worker/executors.js';
import { memberLockPath } from '../../src/worker/steps/member-lock.js';
import { StallableRelay } from '../support/stallable-relay.js';

const state: ObservedState = { members: [], leaderHex: 'a1', raftIndex: 1, revision: 1, at: new Date().toISOString() };

/** PIDs of the processes on this machine (every lab host is) whose command line contains `text`: a host script by its run ID. */
function processesWith(text: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** PIDs of `flock` processes waiting with the lock file open: a script queued behind another for the member lock. */
function waitingFor(lock: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'flock' && readlinkSync(`/proc/${d}/fd/8`) === lock) out.push(Number(d));
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return out;
}

const lockIsFree = (lock: string) => spawnSync('flock', ['-n', lock, 'true']).status === 0;

/**
 * An etcd that is slow to stop: something still listens on one of the member's
 * addresses (a leader handing over, a long fsync). The move-aside waits for it.
 */
async function slowToStop(host: string): Promise<{ addr: string; close(): Promise<void> }> {
  const server: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return { addr: `${host}:${(server.address() as { port: number }).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('two executions of one host step on one member', () => {
  let lab: Lab;
  let inventory: Inventory;
  let executors: Record<StepKind, StepExecutor>;
  const pool = new EtcdPool();
  const log = createLogger('silent');

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'host-lock'), subnet: 80 });
    inventory = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath);
    executors = stepExecutors(inventory, pool, new DirectoryBackupStore(inventory.backups.dir), log);
  });
  afterAll(async () => {
    await pool.close();
    await lab?.stop();
  });

  /** The stop-and-move-aside step a replace of `name` plans, its member also listening on `extra`. */
  function stopStep(runId: string, name: string, extra: string): { run: Run; step: StepSpec; place: ReturnType<typeof hostPlaces> } {
    const cluster = inventory.clusters[0]!;
    const place = hostPlaces(cluster, cluster.members.find((m) => m.name === name)!, runId);
    const step: StepSpec = {
      kind: 'stop-and-move-aside',
      title: `Stop etcd on ${name} and move its data dir aside`,
      // Not gated here: the engine runs it at once (approvals are tested elsewhere).
      destructive: false,
      host: name,
      operation: `stop ${name}`,
      params: { config: place.config, configAside: place.configAside, asideDir: place.asideDir, dataDir: place.dataDir, dataAside: place.dataAside, clientHost: place.clientHost, listen: [...place.listen, extra] },
    };
    const run = newRun(inventory, { runId, runbook: 'replace', title: `Replace ${name}`, cluster: cluster.name, target: name, steps: [step], plannedState: state, requestedBy: 'UALICE', channelId: 'C' }, new Date());
    return { run, step, place };
  }

  it('the second waits for the first to finish, then finds the work done: the data dir is moved aside once', { timeout: 120_000 }, async () => {
    const runId = `r-${randomBytes(4).toString('hex')}`;
    const slow = await slowToStop(lab.host('m3').ip);
    const { run, step, place } = stopStep(runId, 'm3', slow.addr);
    const lock = memberLockPath(place.asideDir);
    const exec = executors['stop-and-move-aside'];
    try {
      // Worker A runs the step: it moves the manifest away, then waits for etcd to be gone.
      const a = exec(run, step, 0, undefined, new AbortController().signal);
      await waitFor('A to move the manifest away', async () => existsSync(place.configAside), 30_000, 50);
      // Worker B starts the same step again (A's lease lapsed) while A's script still runs on the host.
      const b = exec(run, step, 0, undefined, new AbortController().signal);
      await waitFor('B to wait for the member lock', async () => waitingFor(lock).length === 1, 30_000, 50);
      expect(existsSync(place.dataDir)).toBe(true); // nobody has moved the data yet
      // etcd is gone now: A goes on, B after it.
      await slow.close();
      const [ra, rb] = await Promise.all([a, b]);

      expect(ra.skipped).toBeFalsy();
      expect(ra.summary).toBe(`etcd stopped; data dir kept at ${place.dataAside}`);
      expect(ra.output).toContain(`data dir moved to ${place.dataAside}`);
      expect(rb).toMatchObject({ skipped: true, summary: 'another execution of this step ran first; already stopped with its data dir aside: nothing done' });
      expect(rb.output).toContain(`another execution of a step on this member holds ${lock}: waiting up to 120 s for it to finish`);
      expect(rb.output).toMatch(/the other execution finished after \d+ s: looking again before acting/);
      expect(rb.output).toContain(`manifest already away from ${place.config}`);
      expect(rb.output).toContain(`data dir already moved aside to ${place.dataAside}`);
      expect(rb.output).not.toContain('moved to');

      // On the host: the manifest aside once, the data dir aside once and whole (not moved into itself).
      expect(existsSync(place.config)).toBe(false);
      expect(existsSync(place.configAside)).toBe(true);
      expect(existsSync(place.dataDir)).toBe(false);
      expect(readdirSync(place.dataAside)).toEqual(['member']);
      expect(readdirSync(dirname(place.dataDir)).filter((f) => f.startsWith('etcd.before-'))).toEqual([`etcd.before-${runId}`]);
      expect(lab.host('m3').supervisor.pid()).toBeNull();
      expect(lockIsFree(lock)).toBe(true);
    } finally {
      await slow.close().catch(() => undefined);
    }
  });

  describe('a worker that loses its run lease mid-step', () => {
    const relay = new StallableRelay(inject('redisPort'));
    const direct = connectRedis(inject('redisUrl'));
    let late: ReturnType<typeof connectRedis>;
    const prefix = `t-hostlock-${randomBytes(3).toString('hex')}`;
    const LEASE_MS = 1500;

    beforeAll(async () => {
      await relay.start();
      late = connectRedis(`redis://127.0.0.1:${relay.port}`, { forWorker: true });
      await late.ping();
    });
    afterAll(async () => {
      late?.disconnect();
      direct.disconnect();
      await relay.stop();
    });

    const engine = (store: RunStore, said: string[]): EngineDeps => ({
      store,
      executors,
      observe: async () => state,
      notify: { planChanged: async () => undefined, thread: async (_r: Run, t: string) => void said.push(t), record: async (_r: Run, t: string) => void said.push(t) },
      enqueueStep: async () => undefined,
      approvalTtlMs: 60_000,
      now: () => new Date(),
      log,
      hmacKey: 'host-lock-test-key',
      ledger: memoryLedger('host-lock-test-key').ledger,
    });

    it('stops its script on the host within a bound; the worker that takes over does the step once', { timeout: 120_000 }, async () => {
      const runId = `r-${randomBytes(4).toString('hex')}`;
      const slow = await slowToStop(lab.host('m2').ip);
      const { run, place } = stopStep(runId, 'm2', slow.addr);
      const lock = memberLockPath(place.asideDir);
      const storeA = new RunStore(late, prefix);
      const storeB = new RunStore(direct, prefix);
      expect(await storeB.createLocked(run)).toBeNull();
      try {
        // Worker A runs the step; its script on m2 moves the manifest away and waits (up to 60 s) for etcd to go.
        const saidA: string[] = [];
        const a = storeA.withRunLease(runId, 'worker-A', LEASE_MS, (lease) => processStep(runId, 0, engine(storeA, saidA), lease));
        await waitFor('A to move the manifest away', async () => existsSync(place.configAside), 30_000, 50);
        const script = processesWith(runId);
        expect(script.length).toBeGreaterThan(0);

        // The fault: A's connection to Redis stalls for longer than its lease. A notices and closes its SSH connection.
        const t0 = Date.now();
        relay.hold();
        await waitFor('the script on m2 to be gone', async () => processesWith(runId).length === 0, LEASE_MS + 8000, 50);
        const goneMs = Date.now() - t0;
        // At most: the lease, a renewal tick to notice it, and the script's one-second look at its session.
        expect(goneMs).toBeLessThan(LEASE_MS * 2 + 3000);
        expect(lockIsFree(lock)).toBe(true);
        // It was stopped before it moved the data: part done, as after a crash.
        expect(existsSync(join(place.dataDir, 'member'))).toBe(true);
        expect(existsSync(place.dataAside)).toBe(false);

        // A comes back; nothing it did after losing the lease was recorded.
        relay.release();
        expect((await a).ok).toBe(true);
        expect((await storeB.get(runId))!.records[0]).toMatchObject({ status: 'running' });
        expect(saidA.filter((s) => /failed|Step 1:/.test(s))).toEqual([]);

        // Worker B takes the step over once etcd is gone: it does the rest, and the data dir moves aside once.
        await slow.close();
        const saidB: string[] = [];
        const b = await storeB.withRunLease(runId, 'worker-B', 10_000, (lease) => processStep(runId, 0, engine(storeB, saidB), lease));
        expect(b.ok).toBe(true);
        const done = (await storeB.get(runId))!;
        expect(done.status).toBe('done');
        expect(done.records[0]!.summary).toBe(`etcd stopped; data dir kept at ${place.dataAside}`);
        expect(done.records[0]!.output).toContain(`manifest already away from ${place.config}`);
        expect(done.records[0]!.output).toContain(`data dir moved to ${place.dataAside}`);
        expect(readdirSync(place.dataAside)).toEqual(['member']);
        expect(existsSync(place.dataDir)).toBe(false);
        console.log(`[host-lock] the script of the worker that lost its lease was gone ${goneMs} ms after its Redis stalled (lease ${LEASE_MS} ms)`);
      } finally {
        relay.release();
        await slow.close().catch(() => undefined);
      }
    });
  });
});
