import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { takeLease } from '../queue/lease.js';
import { transition, type RunEvent } from './transition.js';
import { TERMINAL, type Run } from './types.js';
import { observeRunChange } from '../metrics/observe.js';

// Compare-and-set on the run's version: bot and workers update runs concurrently
// (a click, a cancel, a step finishing) and none may overwrite another's change.
// With a lease guard the write also needs the run lease to hold the writer's token
// (ARGV[4] = 'owner') or to be free (ARGV[4] = 'free'), checked in the same atomic
// step: a worker that lost its lease (Redis gone for longer than the lease, a
// long pause) and comes back can no longer record anything.
// An ended run leaves the set of active runs that the sweeper watches.
const CAS = `
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cjson.decode(cur).version ~= tonumber(ARGV[1]) then return 0 end
if ARGV[4] == 'owner' and redis.call('GET', KEYS[2]) ~= ARGV[5] then return -2 end
if ARGV[4] == 'free' and redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == '1' then redis.call('SREM', KEYS[3], ARGV[6]) end
return 1`;

// Run and cluster lock come into being together, or neither does.
const CREATE = `
local holder = redis.call('GET', KEYS[2])
if holder then return holder end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('run exists') end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return false`;

// Releases a cluster lock only if it names this run and that run is gone or has
// ended: a run that is still going keeps its lock, whoever asks.
const UNLOCK = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local raw = redis.call('GET', KEYS[2])
if raw then
  local st = cjson.decode(raw).status
  if st ~= 'done' and st ~= 'failed' and st ~= 'cancelled' and st ~= 'rejected' then return 0 end
end
return redis.call('DEL', KEYS[1])`;

// Releases a lease only if this holder still owns it.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

// Renews a lease only while it is still ours: a holder that finds another token has lost it.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// Whether one step attempt still owns its step, read in one atomic step: the run
// lease holds its token, and the run (not ended) is at that step, running, under
// that token. Returns '' when it does, else why not.
const OWNS = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'the run lease is no longer its own (lapsed, or taken by another worker)' end
local raw = redis.call('GET', KEYS[1])
if not raw then return 'the run is gone' end
local r = cjson.decode(raw)
local st = r.status
if st == 'done' or st == 'failed' or st == 'cancelled' or st == 'rejected' then return 'the run has ended (' .. st .. ')' end
local i = tonumber(ARGV[1])
if r.current ~= i then return 'the run is at step ' .. (r.current + 1) .. ' now' end
local rec = r.records[i + 1]
if not rec or rec.status ~= 'running' then return 'the step is not running' end
if type(r.attempt) ~= 'table' or r.attempt.step ~= i or r.attempt.token ~= ARGV[2] then return 'another worker took the step over' end
return ''`;

// Whether an ended run may still put back what it changed: it has ended and the
// cluster's lock still names it (no new run can have started on the cluster).
const PUTS_BACK = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 'the run is gone' end
local st = cjson.decode(raw).status
if st ~= 'done' and st ~= 'failed' and st ~= 'cancelled' and st ~= 'rejected' then return 'the run has not ended' end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'the cluster is no longer locked to the run (freed, or a new run holds it)' end
return ''`;

/** Whose lease a write needs: the writer's own token, or nobody's (the sweeper, on an abandoned run). */
export type LeaseGuard = { owner: string } | { free: true };

/** The run lease of one step attempt. `lost` turns true once renewal finds it gone or taken. */
export interface RunLease {
  token: string;
  readonly lost: boolean;
  /** Aborted when the lease is lost: long operations can stop early. */
  signal: AbortSignal;
}

export class RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private runKey = (id: string) => `${this.prefix}:run:${id}`;
  private lockKey = (cluster: string) => `${this.prefix}:lock:${cluster}`;
  private execKey = (id: string) => `${this.prefix}:runexec:${id}`;
  private activeKey = () => `${this.prefix}:runs:active`;

  async get(runId: string): Promise<Run | null> {
    const raw = await this.redis.get(this.runKey(runId));
    return raw ? (JSON.parse(raw) as Run) : null;
  }

  /**
   * Stores a new run together with its cluster's lock, in one atomic step.
   * Returns null when done, or the run that holds the lock (nothing is written then).
   */
  async createLocked(run: Run): Promise<string | null> {
    const holder = (await this.redis.eval(CREATE, 3, this.runKey(run.runId), this.lockKey(run.cluster), this.activeKey(), JSON.stringify(run), run.runId)) as string | null;
    return holder ?? null;
  }

  /**
   * Applies `change` to the latest stored run and saves it, retrying when someone
   * else saved in between. `change` returns null to leave the run as it is.
   * With `guard`, the save happens only while the run lease is as the guard says;
   * otherwise nothing is written and `leaseLost` is true.
   */
  async update(runId: string, change: (run: Run) => Run | null, guard?: LeaseGuard): Promise<{ run: Run; changed: boolean; leaseLost?: boolean }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const run = await this.get(runId);
      if (!run) throw new Error(`no run ${runId}`);
      const next = change(structuredClone(run));
      if (!next) return { run, changed: false };
      next.version = run.version + 1;
      const mode = !guard ? 'none' : 'owner' in guard ? 'owner' : 'free';
      const token = guard && 'owner' in guard ? guard.owner : '';
      const ended = TERMINAL.includes(next.status) ? '1' : '0';
      const res = (await this.redis.eval(CAS, 3, this.runKey(runId), this.execKey(runId), this.activeKey(), String(run.version), JSON.stringify(next), ended, mode, token, runId)) as number;
      if (res === 1) {
        observeRunChange(run, next);
        return { run: next, changed: true };
      }
      if (res === -1) throw new Error(`no run ${runId}`);
      if (res === -2) return { run, changed: false, leaseLost: true };
    }
    throw new Error(`run ${runId}: too many concurrent updates`);
  }

  /** One transition (see transition.ts), written atomically; `refused` says why it did not happen. */
  async apply(runId: string, event: RunEvent, now: Date, guard?: LeaseGuard): Promise<{ run: Run; changed: boolean; refused?: string }> {
    let refused: string | undefined;
    const res = await this.update(
      runId,
      (r) => {
        const t = transition(r, event, now);
        if ('refused' in t) {
          refused = t.refused;
          return null;
        }
        refused = undefined;
        return t.run;
      },
      guard,
    );
    if (res.leaseLost) return { run: res.run, changed: false, refused: 'this worker no longer holds the run lease' };
    return refused ? { run: res.run, changed: false, refused } : { run: res.run, changed: res.changed };
  }

  lockHolder(cluster: string): Promise<string | null> {
    return this.redis.get(this.lockKey(cluster));
  }

  /** Releases the cluster's lock if `runId` holds it and that run is missing or ended. True if released. */
  async unlockCluster(cluster: string, runId: string): Promise<boolean> {
    return ((await this.redis.eval(UNLOCK, 2, this.lockKey(cluster), this.runKey(runId), runId)) as number) === 1;
  }

  /** Every cluster lock and the run it names. */
  async locks(): Promise<{ cluster: string; runId: string }[]> {
    const out: { cluster: string; runId: string }[] = [];
    const head = `${this.prefix}:lock:`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${head}*`, 'COUNT', 200);
      cursor = next;
      for (const k of keys) {
        const runId = await this.redis.get(k);
        if (runId) out.push({ cluster: k.slice(head.length), runId });
      }
    } while (cursor !== '0');
    return out;
  }

  /** Runs created and not yet ended (the sweeper's list). */
  activeRunIds(): Promise<string[]> {
    return this.redis.smembers(this.activeKey());
  }

  async forgetActive(runId: string): Promise<void> {
    await this.redis.srem(this.activeKey(), runId);
  }

  /** Who holds the run lease right now (null: nobody is executing the run). */
  leaseHolder(runId: string): Promise<string | null> {
    return this.redis.get(this.execKey(runId));
  }

  /**
   * Whether the attempt holding `token` still owns step `index` of the run: null
   * when it does, else why not. Asked by a step right before each write to an
   * outside system, so that a worker that lost its lease (and whose step another
   * worker took over, maybe finished, and went on from) writes nothing late.
   */
  async stepOwner(runId: string, index: number, token: string): Promise<string | null> {
    const why = (await this.redis.eval(OWNS, 2, this.runKey(runId), this.execKey(runId), String(index), token)) as string;
    return why || null;
  }

  /** Whether an ended run may still put back what it changed (it ended, its cluster still locked to it): null, or why not. */
  async putBackOwner(runId: string, cluster: string): Promise<string | null> {
    const why = (await this.redis.eval(PUTS_BACK, 2, this.runKey(runId), this.lockKey(cluster), runId)) as string;
    return why || null;
  }

  /** A short named lease (the sweeper's), taken if free or ours and renewed by calling again. */
  async leaseNamed(name: string, owner: string, ms: number): Promise<boolean> {
    return takeLease(this.redis, `${this.prefix}:lease:${name}`, owner, ms);
  }

  /**
   * Runs `fn` while holding a short lease on the run, so that two jobs for the
   * same run (a duplicate, a retry after a crash) never execute at once. Each
   * attempt has its own token; the lease is renewed only while it still holds
   * that token, and lapses by itself if this process dies or loses Redis. Writes
   * guarded by `{ owner: lease.token }` fail once the lease is lost.
   */
  async withRunLease<T>(runId: string, owner: string, leaseMs: number, fn: (lease: RunLease) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; holder: string | null }> {
    const key = this.execKey(runId);
    const token = `${owner}/${randomBytes(4).toString('hex')}`;
    const got = await this.redis.set(key, token, 'PX', leaseMs, 'NX');
    if (got !== 'OK') return { ok: false, holder: await this.redis.get(key) };
    const ctl = new AbortController();
    const lease: RunLease = {
      token,
      get lost() {
        return ctl.signal.aborted;
      },
      signal: ctl.signal,
    };
    let lastRenewed = Date.now();
    const renew = setInterval(() => {
      // Past the lease's length without a renewal, another worker may hold it now: stop writing.
      if (Date.now() - lastRenewed > leaseMs) ctl.abort(new Error('run lease lapsed'));
      if (ctl.signal.aborted) return;
      this.redis
        .eval(RENEW, 1, key, token, String(leaseMs))
        .then((n) => {
          if (n === 1) lastRenewed = Date.now();
          else ctl.abort(new Error('run lease taken over'));
        })
        .catch(() => undefined);
    }, Math.max(200, leaseMs / 3));
    try {
      return { ok: true, value: await fn(lease) };
    } finally {
      clearInterval(renew);
      await this.redis.eval(RELEASE, 1, key, token).catch(() => undefined);
    }
  }
}
