import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { parseInventory } from '../../src/config/load.js';
import type { ClusterConfig } from '../../src/config/schema.js';
import { EtcdPool } from '../../src/etcd/pool.js';
import { startLab, type Lab } from '../../src/lab/harness.js';
import { createLogger } from '../../src/log.js';
import { writeCheckStep } from '../../src/steps/write-check.js';
import { writeCheck, type DefragStepContext } from '../../src/worker/steps/defrag-steps.js';
import { stepOf } from '../support/steps.js';

const LAB_SUBNET = 173;

/** Which calls of the write check's client fail, and how: each fault hits the real lab etcd's client at one call. */
interface Faults {
  /** The put reaches etcd and is applied, but its answer is lost (a deadline, a connection reset). */
  putAnswerLost?: boolean;
  /** The read-back of the key gets no answer. */
  readFails?: boolean;
  /** Every member refuses the delete. */
  deleteFails?: boolean;
}

/** A pool whose clients are the lab's real ones, with the faults of `faults` injected at the calls they name. */
class FaultyPool extends EtcdPool {
  faults: Faults = {};

  override client(cluster: ClusterConfig, endpoint: string): Etcd3 {
    const real = super.client(cluster, endpoint);
    const f = this.faults;
    return new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'put' && f.putAnswerLost) {
          return (key: string) => ({
            value: async (v: string) => {
              await target.put(key).value(v);
              throw new Error('4 DEADLINE_EXCEEDED: Deadline exceeded (injected: the put was applied, its answer lost)');
            },
          });
        }
        if (prop === 'get' && f.readFails) {
          return () => ({ string: () => Promise.reject(new Error('14 UNAVAILABLE: read ECONNRESET (injected: the read-back got no answer)')) });
        }
        if (prop === 'delete' && f.deleteFails) {
          return () => ({ key: () => Promise.reject(new Error('14 UNAVAILABLE: read ECONNRESET (injected: the delete got no answer)')) });
        }
        return Reflect.get(target, prop, receiver);
      },
    });
  }
}

/** The error a call ended with, or null when it succeeded. */
const failureOf = (p: Promise<unknown>): Promise<Error | null> =>
  p.then(
    () => null,
    (e: Error) => e,
  );

describe("the defrag runbook's write check never leaves its key in etcd unsaid", () => {
  let lab: Lab;
  let cluster: ClusterConfig;
  const pool = new FaultyPool();
  let ctx: DefragStepContext;
  let runN = 0;
  const step = () => stepOf(writeCheckStep.spec({ runId: `r-wc${++runN}`, voters: 3 }), 'write-check');
  const keysLeft = async () => (await lab.etcdctl(['get', '/etcd-medic/write-check/', '--prefix', '--keys-only'])).stdout.split('\n').filter(Boolean);

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'defrag-write-check'), subnet: LAB_SUBNET });
    cluster = parseInventory(readFileSync(lab.inventoryPath, 'utf8'), lab.inventoryPath).clusters[0]!;
    ctx = { cluster, pool, store: new DirectoryBackupStore(join(lab.opts.root, 'backups')), keep: 3, log: createLogger('silent') };
  });
  afterAll(async () => {
    await pool.close();
    await lab?.stop();
  });

  it('passes on a healthy cluster and leaves nothing behind', async () => {
    pool.faults = {};
    const s = step();
    const res = await writeCheck(ctx, s);
    expect(res.summary).toContain(`a write went through (put, read back, deleted ${s.params.key})`);
    expect(await keysLeft()).toEqual([]);
  });

  it('a read-back that fails still deletes the key it wrote, and the failure says so', async () => {
    pool.faults = { readFails: true };
    const s = step();
    const err = await failureOf(writeCheck(ctx, s));
    expect(err?.message).toContain(`${s.params.key} was written but reading it back failed: 14 UNAVAILABLE`);
    expect(err?.message).toContain(`${s.params.key} was deleted again`);
    // etcd itself, read with etcdctl: the key is gone.
    expect(await keysLeft()).toEqual([]);
  });

  it('a put whose answer was lost after etcd applied it: the step fails, and the key it did write is deleted', async () => {
    pool.faults = { putAnswerLost: true };
    const s = step();
    const err = await failureOf(writeCheck(ctx, s));
    expect(err?.message).toContain('a write still fails: 4 DEADLINE_EXCEEDED');
    expect(err?.message).toContain(`${s.params.key} was deleted again`);
    expect(await keysLeft()).toEqual([]);
  });

  it('when no member takes the delete, the failure names the key left in etcd and how to remove it', async () => {
    pool.faults = { readFails: true, deleteFails: true };
    const s = step();
    const err = await failureOf(writeCheck(ctx, s));
    expect(err?.message).toContain(`${s.params.key} may be left in etcd: deleting it failed (`);
    // Every member was asked before giving up.
    for (const ep of cluster.etcd.endpoints) expect(err?.message).toContain(`${ep}: 14 UNAVAILABLE`);
    expect(err?.message).toContain(`Remove it with \`etcdctl del ${s.params.key}\``);
    // What it says is true: the key is there.
    expect(await keysLeft()).toEqual([s.params.key]);
    await lab.etcdctl(['del', s.params.key]);
  });

  it('a read-back that succeeds but a delete no member takes: the step fails naming the key, not "writes work"', async () => {
    pool.faults = { deleteFails: true };
    const s = step();
    const err = await failureOf(writeCheck(ctx, s));
    expect(err?.message).toMatch(new RegExp(`^a write went through and read back, but ${s.params.key} may be left in etcd`));
    expect(await keysLeft()).toEqual([s.params.key]);
    await lab.etcdctl(['del', s.params.key]);
  });
});
