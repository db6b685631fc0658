import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { FakeSlack } from '../../src/lab/fake-slack.js';
import type { Lab } from '../../src/lab/harness.js';
import { startWorker, type MainProcess } from './main-process.js';
import { answerAt, latest, textOf, threadOf } from './slack-view.js';

/**
 * Workers that run as their own processes, one alive at a time: worker k is started
 * with `faults[k]` in its environment (a fault that kills it), and when it dies the
 * next one starts and takes its job over. The last one has no fault and finishes.
 */
export class WorkerChain {
  readonly workers: MainProcess[] = [];
  private ended = false;

  constructor(
    private readonly env: Record<string, string>,
    private readonly faults: Record<string, string>[],
    /** Runs after worker k-1 died and before worker k starts (a test's change to the world meanwhile). */
    private readonly beforeNext: (k: number) => Promise<void> = async () => undefined,
  ) {
    this.next();
  }

  /** The worker alive now (null between a death and the next start). */
  get current(): MainProcess | null {
    const w = this.workers[this.workers.length - 1];
    return w && w.child.exitCode === null && w.child.signalCode === null ? w : null;
  }

  private next(): void {
    if (this.ended) return;
    const fault = this.faults[this.workers.length] ?? {};
    // A short job lock: a dead worker's job is taken over after about 2 s instead of 30.
    const w = startWorker({ ...this.env, WORKER_LOCK_MS: '2000', LOG_LEVEL: 'warn', ...fault });
    this.workers.push(w);
    void w.exit.then(() => this.beforeNext(this.workers.length)).then(() => this.next());
  }

  /** How each worker ended, in order (null: still running). */
  exits(): (NodeJS.Signals | number | null)[] {
    return this.workers.map((w) => w.child.signalCode ?? w.child.exitCode);
  }

  /** What the workers printed, for a failure message. */
  output(): string {
    return this.workers.map((w, i) => `--- worker ${i} (pid ${w.child.pid}, ${JSON.stringify(this.faults[i] ?? {})}) ---\n${w.out.join('').slice(-2000)}`).join('\n');
  }

  async stop(): Promise<void> {
    this.ended = true;
    for (const w of this.workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => w.exit));
  }
}

/**
 * Approves every gate of the run as its buttons appear (as a second person
 * would), until the plan message says the run ended. Returns the final header
 * (a run that ends DONE with a caveat says it after the status: "…: DONE: etcd healthy, …").
 */
export async function approveUntilEnded(
  t: { slack: FakeSlack; click(p: { user: string; messageTs: string; actionId: string; blockId: string; value: string }): Promise<{ responseUrl: string }> },
  ts: string,
  approver: string,
  timeoutMs: number,
  describe: () => string = () => '',
): Promise<string> {
  const clicked = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const msg = latest(t.slack, ts);
    const header = textOf(msg).split('\n')[0]!;
    if (/: (DONE|FAILED|CANCELLED|REJECTED)(:|$)/.test(header)) return header;
    const blocks = (msg.body.blocks as { type: string; block_id?: string; elements?: { action_id?: string; value?: string }[] }[]) ?? [];
    for (const b of blocks) {
      if (b.type !== 'actions' || !b.block_id?.startsWith('gate-') || clicked.has(b.block_id)) continue;
      clicked.add(b.block_id);
      const approve = b.elements!.find((e) => e.action_id === 'medic_approve')!;
      await answerAt(t.slack, (await t.click({ user: approver, messageTs: ts, actionId: 'medic_approve', blockId: b.block_id, value: approve.value! })).responseUrl);
    }
    if (Date.now() > deadline) throw new Error(`run not ended within ${timeoutMs} ms:\n${textOf(msg)}\n--- thread ---\n${threadOf(t.slack, ts).join('\n')}\n${describe()}`);
    await t.slack.waitFor(() => true, 500, t.slack.lastSeq).catch(() => undefined);
  }
}

/** Data dirs moved aside on each host (`<data-dir>.before-<run>`), by host name. */
export function asideDirs(lab: Lab): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const h of lab.hosts) {
    const prefix = `${basename(h.dataDir)}.before-`;
    out[h.name] = readdirSync(dirname(h.dataDir)).filter((f) => f.startsWith(prefix)).sort();
  }
  return out;
}

/** How many lines of a member's etcd log (all its runs so far) match `re`. */
export function etcdLogCount(lab: Lab, member: string, re: RegExp): number {
  const file = `${lab.host(member).logDir}/etcd.log`;
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8').split('\n').filter((l) => re.test(l)).length;
}

/**
 * One fault per step of a plan, in order: worker k dies right after step k acts
 * (`kind#n` names the n-th step of that kind, for the kinds a plan repeats).
 */
export function killAfterEach(kinds: readonly string[]): Record<string, string>[] {
  return kinds.map((kind, i) => ({ MEDIC_FAULT_KILL_AFTER: `${kind}#${kinds.slice(0, i + 1).filter((k) => k === kind).length}` }));
}
