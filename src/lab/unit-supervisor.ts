import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostSupervisor } from './host-supervisor.js';
import { execArgv, execLine, loadUnit, unitEnvironment, UnitError, type UnitSpec } from './unit-files.js';

export type ActiveState = 'active' | 'inactive' | 'failed' | 'activating' | 'deactivating';

/** One change of a unit's state, as `systemctl show -p ActiveState,SubState,MainPID` would have seen it. */
export interface UnitTransition {
  at: number;
  state: ActiveState;
  sub: string;
  /** The main process, while one runs (also while it is being stopped). */
  pid: number | null;
}

type Verb = 'start' | 'stop' | 'restart';

interface Want {
  verb: Verb;
  nonce: string;
}

interface Unit {
  name: string;
  child: ChildProcess | null;
  exit: Promise<void> | null;
  startedAt: number;
  exitedAt: number | null;
  backoffMs: number;
  restarts: number;
  restart: UnitSpec['restart'];
  desired: 'active' | 'inactive';
  /** The nonce of the last request taken up; a want file with another one is a new job. */
  lastJob: string | null;
  busy: boolean;
  stopping: boolean;
  /** The running process has said it is ready (Type=notify), or needs not (Type=simple). */
  ready: boolean;
  history: UnitTransition[];
}

/** The grace period between SIGTERM and SIGKILL on a stop (systemd's is 90 s; etcd can hang on SIGTERM while its peers are gone). */
const STOP_GRACE_MS = 3000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8000;
/** A process that ran this long before it exited was not crash-looping: its next restart waits the first backoff again. */
const BACKOFF_RESET_AFTER_MS = 10_000;
/** systemd's default TimeoutStartSec: a Type=notify process not ready by then is killed and its start fails. */
const START_TIMEOUT_MS = 90_000;

/**
 * Plays systemd for one host's service units. `systemctl` (the script from
 * systemctl.ts, run over SSH) and this supervisor talk through files in the
 * host's run directory:
 *   <unit>.want    `start|stop|restart <nonce>`, written by systemctl (atomically)
 *   <unit>.state   `<ActiveState> <SubState> <MainPID>`, written here on every change
 *   jobs/<nonce>   `done`, or `failed` and the lines systemctl prints, written here once the request is carried out
 * A start is done once the main process runs (Type=simple) or says READY=1
 * (Type=notify, through socat; see notifySocket), a stop once it is
 * gone, a restart once a new one runs. The unit file, its drop-ins and its
 * EnvironmentFiles are read at every start. A process that exits while its
 * unit is wanted active is restarted under Restart=always (or on-failure),
 * with a backoff that doubles from 0.5 s to 8 s.
 */
export class UnitSupervisor implements HostSupervisor {
  private readonly units = new Map<string, Unit>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private stopped = false;
  private requests = 0;
  private lastPrune = 0;

  constructor(
    readonly host: string,
    readonly unitDir: string,
    readonly runDir: string,
    private readonly logDir: string,
    private readonly pollMs = 200,
  ) {
    for (const d of [unitDir, join(runDir, 'jobs'), logDir]) mkdirSync(d, { recursive: true });
  }

  /** Boots the host: every enabled unit not yet asked for anything is started. */
  start(): void {
    for (const name of this.enabledUnits()) if (!existsSync(this.wantFile(name))) this.writeWant(name, 'start', 'boot');
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    void this.tick();
  }

  /** The main PID of a unit (etcd by default) while its process runs. */
  pid(name = 'etcd'): number | null {
    const c = this.units.get(name)?.child;
    return c && c.exitCode === null && c.signalCode === null ? (c.pid ?? null) : null;
  }

  /** The unit's state now, as `systemctl is-active` prints it. */
  state(name = 'etcd'): ActiveState {
    return this.units.get(name)?.history.at(-1)?.state ?? 'inactive';
  }

  /** Every state the unit went through since the lab started, oldest first. */
  history(name = 'etcd'): UnitTransition[] {
    return [...(this.units.get(name)?.history ?? [])];
  }

  /** True when no process of the unit ran at any moment between `from` and `to` (epoch ms). */
  downThroughout(name: string, from: number, to: number): boolean {
    const h = this.units.get(name)?.history ?? [];
    const before = h.filter((t) => t.at <= from).at(-1);
    if (before && before.pid !== null) return false;
    return h.every((t) => t.at <= from || t.at > to || t.pid === null);
  }

  /** Asks for a start, stop or restart exactly as `systemctl` does (through the want file); returns its nonce without waiting. */
  request(name: string, verb: Verb): string {
    const nonce = `lab-${process.pid}-${++this.requests}`;
    this.writeWant(name, verb, nonce);
    return nonce;
  }

  /**
   * The unit's main process dies of a signal (an OOM kill, a crash) and the
   * unit is wanted stopped at the same moment, so nothing restarts it: it
   * ends `failed`, as systemd shows a unit whose process was killed.
   */
  kill(name = 'etcd', signal: NodeJS.Signals = 'SIGKILL'): void {
    const u = this.unit(name);
    const nonce = this.request(name, 'stop');
    u.lastJob = nonce;
    u.desired = 'inactive';
    this.writeJob(nonce, 'done');
    const pid = this.pid(name);
    if (pid) process.kill(pid, signal);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(
      [...this.units.values()].map(async (u) => {
        if (!u.child) return;
        killGroup(u.child, 'SIGKILL');
        await u.exit;
      }),
    );
  }

  private unit(name: string): Unit {
    let u = this.units.get(name);
    if (!u) {
      u = { name, child: null, exit: null, startedAt: 0, exitedAt: null, backoffMs: BACKOFF_FIRST_MS, restarts: 0, restart: 'no', desired: 'inactive', lastJob: null, busy: false, stopping: false, ready: false, history: [] };
      this.units.set(name, u);
    }
    return u;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      if (!existsSync(this.runDir)) return; // the lab's files are gone: it is being torn down
      const wanted = readdirSync(this.runDir).filter((f) => f.endsWith('.want')).map((f) => f.slice(0, -'.want'.length));
      for (const name of wanted) {
        const u = this.unit(name);
        if (u.busy) continue;
        const want = this.readWant(name);
        if (want && want.nonce !== u.lastJob) {
          u.busy = true;
          this.runJob(u, want)
            .catch((err: Error) => this.journal(name, `job ${want.nonce} failed in the lab: ${err.message}`))
            .finally(() => (u.busy = false));
        } else if (u.desired === 'active' && !u.child && this.state(name) === 'activating' && u.exitedAt !== null && Date.now() - u.exitedAt >= u.backoffMs) {
          u.backoffMs = Math.min(u.backoffMs * 2, BACKOFF_MAX_MS);
          u.restarts++;
          this.journal(name, `Scheduled restart job, restart counter is at ${u.restarts}.`);
          this.launch(u);
        }
      }
      if (Date.now() - this.lastPrune > 60_000) this.pruneJobs();
    } catch {
      /* a file removed between listing and reading: the next tick sees the new state */
    } finally {
      this.ticking = false;
    }
  }

  private async runJob(u: Unit, want: Want): Promise<void> {
    u.lastJob = want.nonce;
    let failure: string | null = null;
    if (want.verb === 'stop') {
      u.desired = 'inactive';
      await this.terminate(u);
    } else {
      try {
        // A unit file systemd would not load is refused before the running process is touched.
        execLine(loadUnit(this.unitDir, u.name));
      } catch (err) {
        const e = asUnitError(err);
        this.journal(u.name, e.message);
        this.writeJob(want.nonce, `failed\n${failureMessage(u.name, e)}`);
        return;
      }
      u.desired = 'active';
      if (want.verb === 'restart') await this.terminate(u);
      if (!u.child) {
        u.backoffMs = BACKOFF_FIRST_MS;
        u.restarts = 0;
        failure = this.launch(u);
      }
      if (failure === null && u.child && !u.ready) failure = await this.untilReady(u, want);
    }
    this.writeJob(want.nonce, failure === null ? 'done' : `failed\n${failure}`);
  }

  /**
   * A Type=notify start is done once the process says READY=1; it fails when
   * the process exits first, or is not ready within TimeoutStartSec (it is then
   * killed, and Restart= decides what follows). A later request for the unit
   * (a stop) cancels the wait, as systemd's job queue does.
   */
  private async untilReady(u: Unit, want: Want): Promise<string | null> {
    const child = u.child;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!this.stopped) {
      if (u.child !== child) return `Job for ${u.name}.service failed because the control process exited with error code.\nSee "systemctl status ${u.name}.service" and "journalctl -xe" for details.`;
      if (u.ready) return null;
      const next = this.readWant(u.name);
      if (next && next.nonce !== want.nonce) return `Job for ${u.name}.service canceled.`;
      if (Date.now() > deadline) {
        this.journal(u.name, 'start operation timed out. Terminating.');
        if (child) killGroup(child, 'SIGKILL');
        return `Job for ${u.name}.service failed because a timeout was exceeded.\nSee "systemctl status ${u.name}.service" and "journalctl -xe" for details.`;
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    return null;
  }

  /** Starts the unit's process; returns what systemctl prints when it cannot. */
  private launch(u: Unit): string | null {
    let argv: string[];
    let env: Record<string, string>;
    try {
      const spec = loadUnit(this.unitDir, u.name);
      u.restart = spec.restart;
      env = unitEnvironment(spec);
      argv = execArgv(spec, env);
    } catch (err) {
      const e = asUnitError(err);
      this.journal(u.name, e.message);
      this.setState(u, 'failed', 'failed', null);
      u.desired = 'inactive';
      return failureMessage(u.name, e);
    }
    const notify = this.notifySocket(u);
    if (notify) env = { ...env, NOTIFY_SOCKET: notify.path };
    const log = openSync(this.logFile(u.name), 'a');
    // Its own process group, like a unit's cgroup: a stop reaches every process the unit started.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log, log], env, cwd: '/', detached: true });
    closeSync(log);
    u.child = child;
    u.ready = !notify;
    if (notify) {
      let said = '';
      notify.receiver.stdout!.on('data', (b: Buffer) => {
        said += b.toString('utf8');
        if (!u.ready && u.child === child && /(^|\n)READY=1/.test(said)) {
          u.ready = true;
          this.journal(u.name, `Started ${u.name}.service (main PID ${child.pid ?? '?'} is ready).`);
          this.setState(u, 'active', 'running', child.pid ?? null);
        }
      });
      child.once('exit', () => notify.receiver.kill('SIGKILL'));
    }
    u.startedAt = Date.now();
    u.exitedAt = null;
    let exited!: () => void;
    u.exit = new Promise<void>((r) => (exited = r));
    let seen = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (seen) return;
      seen = true;
      exited();
      this.exited(u, child, code, signal);
    };
    child.once('exit', onExit);
    // A program that cannot be executed: systemd reports status=203/EXEC.
    child.once('error', () => onExit(203, null));
    if (notify) {
      this.journal(u.name, `Starting ${u.name}.service (main PID ${child.pid ?? '?'}), waiting for READY=1...`);
      this.setState(u, 'activating', 'start', child.pid ?? null);
    } else {
      this.journal(u.name, `Started ${u.name}.service (main PID ${child.pid ?? '?'}).`);
      this.setState(u, 'active', 'running', child.pid ?? null);
    }
    return null;
  }

  /**
   * For a Type=notify unit, the socket its process reports readiness on. Node
   * has no unix datagram sockets: socat receives the messages and hands them
   * over on its stdout. socat binds it at once, long before the process can be
   * ready (etcd: once it has joined a cluster with a leader, a second at least).
   */
  private notifySocket(u: Unit): { path: string; receiver: ChildProcess } | null {
    if (loadUnit(this.unitDir, u.name).type !== 'notify') return null;
    const path = join(this.runDir, `${u.name}.notify`);
    rmSync(path, { force: true });
    const receiver = spawn('socat', ['-u', `UNIX-RECV:${path}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'ignore'] });
    receiver.on('error', (err) => this.journal(u.name, `the lab cannot receive sd_notify messages: ${err.message} (is socat installed?)`));
    return { path, receiver };
  }

  private exited(u: Unit, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (u.child !== child) return;
    u.child = null;
    u.exitedAt = Date.now();
    killGroup(child, 'SIGKILL'); // what the main process left behind goes with it, as with a unit's cgroup
    this.journal(u.name, signal ? `Main process exited, code=killed, status=${signal}` : `Main process exited, code=exited, status=${code}`);
    if (u.stopping || this.stopped) return; // terminate() records the end of a stop
    const failed = signal !== null || code !== 0;
    // A stop written but not yet taken up counts: the process is not to come back.
    const pending = this.readWant(u.name);
    const wantedActive = u.desired === 'active' && !(pending && pending.nonce !== u.lastJob && pending.verb === 'stop');
    if (wantedActive && (u.restart === 'always' || (u.restart === 'on-failure' && failed))) {
      if (u.exitedAt - u.startedAt >= BACKOFF_RESET_AFTER_MS) u.backoffMs = BACKOFF_FIRST_MS;
      this.setState(u, 'activating', 'auto-restart', null);
    } else {
      this.setState(u, failed ? 'failed' : 'inactive', failed ? 'failed' : 'dead', null);
    }
  }

  /** SIGTERM to the unit's processes, SIGKILL after the grace period; resolves once the main process is gone. */
  private async terminate(u: Unit): Promise<void> {
    const child = u.child;
    if (!child) {
      // A stop cancels a pending auto-restart; a failed unit stays failed, as systemd keeps it until reset-failed or a start.
      if (this.state(u.name) !== 'failed' && this.state(u.name) !== 'inactive') this.setState(u, 'inactive', 'dead', null);
      return;
    }
    u.stopping = true;
    this.journal(u.name, `Stopping ${u.name}.service...`);
    this.setState(u, 'deactivating', 'stop-sigterm', child.pid ?? null);
    let killed = false;
    const hard = setTimeout(() => {
      killed = true;
      this.journal(u.name, 'State \'stop-sigterm\' timed out. Killing.');
      killGroup(child, 'SIGKILL');
    }, STOP_GRACE_MS);
    killGroup(child, 'SIGTERM');
    await u.exit;
    clearTimeout(hard);
    u.stopping = false;
    if (killed) this.setState(u, 'failed', 'failed', null);
    else this.setState(u, 'inactive', 'dead', null);
    this.journal(u.name, `Stopped ${u.name}.service.`);
  }

  private setState(u: Unit, state: ActiveState, sub: string, pid: number | null): void {
    u.history.push({ at: Date.now(), state, sub, pid });
    const file = join(this.runDir, `${u.name}.state`);
    writeFileSync(`${file}.tmp`, `${state} ${sub} ${pid ?? 0}\n`);
    renameSync(`${file}.tmp`, file);
  }

  private wantFile(name: string): string {
    return join(this.runDir, `${name}.want`);
  }

  private writeWant(name: string, verb: Verb, nonce: string): void {
    const file = this.wantFile(name);
    writeFileSync(`${file}.lab`, `${verb} ${nonce}\n`);
    renameSync(`${file}.lab`, file);
  }

  private readWant(name: string): Want | null {
    try {
      const [verb, nonce] = readFileSync(this.wantFile(name), 'utf8').trim().split(/\s+/);
      return (verb === 'start' || verb === 'stop' || verb === 'restart') && nonce ? { verb, nonce } : null;
    } catch {
      return null;
    }
  }

  private writeJob(nonce: string, result: string): void {
    const file = join(this.runDir, 'jobs', nonce);
    writeFileSync(`${file}.tmp`, `${result}\n`);
    renameSync(`${file}.tmp`, file);
  }

  /** Results nobody collected (systemctl leaves them for a concurrent caller to read) are dropped after ten minutes. */
  private pruneJobs(): void {
    this.lastPrune = Date.now();
    const dir = join(this.runDir, 'jobs');
    for (const f of readdirSync(dir)) {
      try {
        if (Date.now() - statSync(join(dir, f)).mtimeMs > 600_000) rmSync(join(dir, f), { force: true });
      } catch {
        /* removed meanwhile */
      }
    }
  }

  /** Units enabled as `systemctl enable` leaves them: linked from a target's `.wants` directory. */
  private enabledUnits(): string[] {
    const out = new Set<string>();
    for (const d of readdirSync(this.unitDir).filter((f) => f.endsWith('.wants'))) {
      for (const f of readdirSync(join(this.unitDir, d))) if (f.endsWith('.service')) out.add(f.slice(0, -'.service'.length));
    }
    return [...out];
  }

  private logFile(name: string): string {
    return join(this.logDir, `${name}.log`);
  }

  /** systemd's own lines about the unit, in the same log as the unit's output (its journal). */
  private journal(name: string, line: string): void {
    try {
      appendFileSync(this.logFile(name), `${new Date().toISOString()} systemd[1]: ${name}.service: ${line}\n`);
    } catch {
      /* the log directory went away with the lab */
    }
  }
}

function asUnitError(err: unknown): UnitError {
  return err instanceof UnitError ? err : new UnitError(err instanceof Error ? err.message : String(err), 'bad-setting');
}

/** What `systemctl start` prints when the start fails, by cause. */
function failureMessage(name: string, e: UnitError): string {
  if (e.kind === 'not-found') return `Failed to start ${name}.service: Unit ${name}.service not found.`;
  if (e.kind === 'bad-setting') return `Failed to start ${name}.service: Unit ${name}.service has a bad unit file setting.\nSee system logs and 'systemctl status ${name}.service' for details.`;
  return `Job for ${name}.service failed because of unavailable resources or another system error.\nSee "systemctl status ${name}.service" and "journalctl -xe" for details.`;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* the group is gone already */
  }
}
