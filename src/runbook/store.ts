import type { Redis } from 'ioredis';
import type { Run } from './types.js';

// Compare-and-set on the run's version: bot and workers update runs concurrently
// (a click, a cancel, a step finishing) and none may overwrite another's change.
const CAS = `
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cjson.decode(cur).version ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

// Releases a lock only if this holder still owns it.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private runKey = (id: string) => `${this.prefix}:run:${id}`;
  private lockKey = (cluster: string) => `${this.prefix}:lock:${cluster}`;
  private execKey = (id: string) => `${this.prefix}:runexec:${id}`;

  async get(runId: string): Promise<Run | null> {
    const raw = await this.redis.get(this.runKey(runId));
    return raw ? (JSON.parse(raw) as Run) : null;
  }

  async create(run: Run): Promise<void> {
    const ok = await this.redis.set(this.runKey(run.runId), JSON.stringify(run), 'NX');
    if (ok !== 'OK') throw new Error(`run ${run.runId} already exists`);
  }

  /**
   * Applies `change` to the latest stored run and saves it, retrying when someone
   * else saved in between. `change` returns null to leave the run as it is.
   */
  async update(runId: string, change: (run: Run) => Run | null): Promise<{ run: Run; changed: boolean }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const run = await this.get(runId);
      if (!run) throw new Error(`no run ${runId}`);
      const next = change(structuredClone(run));
      if (!next) return { run, changed: false };
      next.version = run.version + 1;
      const res = (await this.redis.eval(CAS, 1, this.runKey(runId), String(run.version), JSON.stringify(next))) as number;
      if (res === 1) return { run: next, changed: true };
      if (res === -1) throw new Error(`no run ${runId}`);
    }
    throw new Error(`run ${runId}: too many concurrent updates`);
  }

  /** One run per cluster at a time. Returns null when taken, else the run that holds it. */
  async lockCluster(cluster: string, runId: string): Promise<string | null> {
    const ok = await this.redis.set(this.lockKey(cluster), runId, 'NX');
    return ok === 'OK' ? null : await this.redis.get(this.lockKey(cluster));
  }

  async unlockCluster(cluster: string, runId: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.lockKey(cluster), runId);
  }

  lockHolder(cluster: string): Promise<string | null> {
    return this.redis.get(this.lockKey(cluster));
  }

  /**
   * Runs `fn` while holding a short lease on the run, so that two jobs for the
   * same run (a duplicate, a retry after a crash) never execute at once. The
   * lease is renewed while `fn` runs and lapses by itself if this process dies.
   */
  async withRunLease<T>(runId: string, owner: string, leaseMs: number, fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; holder: string | null }> {
    const key = this.execKey(runId);
    const got = await this.redis.set(key, owner, 'PX', leaseMs, 'NX');
    if (got !== 'OK') return { ok: false, holder: await this.redis.get(key) };
    const renew = setInterval(() => void this.redis.pexpire(key, leaseMs).catch(() => undefined), Math.max(200, leaseMs / 3));
    try {
      return { ok: true, value: await fn() };
    } finally {
      clearInterval(renew);
      await this.redis.eval(RELEASE, 1, key, owner).catch(() => undefined);
    }
  }
}
