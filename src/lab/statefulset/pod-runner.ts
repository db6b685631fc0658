import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { portOpen } from '../harness.js';
import { resourceType, type KubeObject, type ObjectStore } from '../kube/store.js';

const PODS = resourceType('pods', '')!;

interface Proc {
  uid: string;
  child: ChildProcess | null;
  exitedAt: number | null;
  exitCode: number | null;
  restarts: number;
  backoffMs: number;
  startedAt: string;
  logFile: string;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The kubelets of the StatefulSet lab, for every node at once: each pod bound to a
 * node runs its first container's command as a local process. Its environment's
 * `$(VAR)` references are expanded in command and args as the kubelet does
 * (env values and the downward API's fieldRef), and its volume mounts are the
 * container's filesystem: a path under a mount path names that volume's
 * directory (a PVC's directory, a secret's files), so a container's arguments and
 * a utility pod's `sh -c` script run unchanged. restartPolicy Always restarts an
 * exited process with backoff; Never/OnFailure end the pod Succeeded or Failed.
 * A deleted pod's process is stopped (SIGTERM, then SIGKILL after the grace).
 */
export class PodRunner {
  private readonly procs = new Map<string, Proc>();

  constructor(
    private readonly store: ObjectStore,
    /** The host directory behind a pod's volume, or null when the volume cannot be had (its PVC is missing). */
    private readonly volumeDir: (pod: KubeObject, volume: any) => string | null,
    private readonly logDir: string,
    private readonly log: (s: string) => void,
  ) {
    mkdirSync(logDir, { recursive: true });
  }

  /** The PID of a pod's process, or null when none runs. */
  pid(namespace: string, name: string): number | null {
    const c = this.procs.get(`${namespace}/${name}`)?.child;
    return c && c.exitCode === null && c.signalCode === null ? (c.pid ?? null) : null;
  }

  async tick(): Promise<void> {
    const pods = this.store.list(PODS).items;
    const live = new Map(pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
    for (const [key, proc] of this.procs) {
      const pod = live.get(key);
      if (!pod || pod.metadata.uid !== proc.uid) {
        await this.kill(proc, 'SIGTERM');
        this.procs.delete(key);
      }
    }
    for (const [key, pod] of live) {
      if (!pod.spec?.nodeName || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      await this.reconcile(key, pod);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.procs.values()].map((p) => this.kill(p, 'SIGKILL')));
    this.procs.clear();
  }

  private async reconcile(key: string, pod: KubeObject): Promise<void> {
    let proc = this.procs.get(key);
    const policy = pod.spec.restartPolicy ?? 'Always';
    if (!proc) {
      proc = { uid: pod.metadata.uid, child: null, exitedAt: null, exitCode: null, restarts: 0, backoffMs: 500, startedAt: now(), logFile: join(this.logDir, `${pod.metadata.namespace}_${pod.metadata.name}.log`) };
      this.procs.set(key, proc);
    }
    if (!proc.child && proc.exitedAt === null && !this.launch(pod, proc)) {
      return this.write(pod, { phase: 'Pending', conditions: [{ type: 'Ready', status: 'False' }], containerStatuses: [{ name: pod.spec.containers[0].name, ready: false, started: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] });
    }
    const running = !!proc.child;
    if (!running && proc.exitedAt !== null) {
      if (policy !== 'Always' && !(policy === 'OnFailure' && proc.exitCode !== 0)) {
        const phase = proc.exitCode === 0 ? 'Succeeded' : 'Failed';
        return this.write(pod, { phase, conditions: [{ type: 'Ready', status: 'False', reason: 'PodCompleted' }], containerStatuses: [this.terminated(pod, proc)] });
      }
      if (Date.now() - proc.exitedAt >= proc.backoffMs) {
        proc.backoffMs = Math.min(proc.backoffMs * 2, 4000);
        proc.restarts++;
        this.launch(pod, proc);
      }
    }
    const c = pod.spec.containers[0];
    const up = !!proc.child;
    const probe = c.readinessProbe?.tcpSocket?.port;
    const ready = up && (probe ? await portOpen(pod.status?.podIP, Number(probe), 300) : true);
    const state = up ? { running: { startedAt: proc.startedAt } } : { waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${c.name} in pod ${pod.metadata.name}` } };
    this.write(pod, {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      containerStatuses: [{ name: c.name, image: c.image, ready, started: up, restartCount: proc.restarts, state, ...(proc.exitCode !== null ? { lastState: this.terminated(pod, proc) } : {}) }],
    });
  }

  private terminated(pod: KubeObject, proc: Proc): any {
    const c = pod.spec.containers[0];
    let message: string | undefined;
    // FallbackToLogsOnError: a failed container's message is the tail of its output.
    if (proc.exitCode !== 0 && c.terminationMessagePolicy === 'FallbackToLogsOnError') {
      try {
        message = readFileSync(proc.logFile, 'utf8').slice(-2048);
      } catch {
        /* no output */
      }
    }
    return { name: c.name, image: c.image, ready: false, started: false, restartCount: proc.restarts, state: { terminated: { exitCode: proc.exitCode, reason: proc.exitCode === 0 ? 'Completed' : 'Error', ...(message ? { message } : {}), finishedAt: now() } } };
  }

  /** Starts the pod's process; false when a volume is missing (the kubelet waits for it). */
  private launch(pod: KubeObject, proc: Proc): boolean {
    const c = pod.spec.containers[0];
    const mounts: [string, string][] = [];
    for (const m of c.volumeMounts ?? []) {
      const v = (pod.spec.volumes ?? []).find((x: any) => x.name === m.name);
      const dir = v && this.volumeDir(pod, v);
      if (!dir) return false;
      mounts.push([m.mountPath.replace(/\/+$/, ''), dir]);
    }
    mounts.sort((a, b) => b[0].length - a[0].length);
    const env = envOf(pod, c);
    const expand = (s: string) => {
      let out = s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, k: string) => env[k] ?? all);
      for (const [path, dir] of mounts) out = out.replace(new RegExp(`(^|[^\\w.\\/-])${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?=\\/|$|[^\\w.-])`, 'g'), `$1${dir}`);
      return out;
    };
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map(String).map(expand);
    const fd = openSync(proc.logFile, 'a');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    closeSync(fd);
    proc.child = child;
    proc.exitedAt = null;
    proc.startedAt = now();
    child.on('exit', (code, signal) => {
      if (proc.child !== child) return;
      proc.child = null;
      proc.exitedAt = Date.now();
      proc.exitCode = code ?? (signal ? 128 + 9 : 1);
    });
    child.on('error', (err) => this.log(`${pod.metadata.name}: ${err.message}`));
    return true;
  }

  private kill(proc: Proc, signal: NodeJS.Signals): Promise<void> {
    const child = proc.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const hard = setTimeout(() => child.kill('SIGKILL'), signal === 'SIGKILL' ? 0 : 3000);
      child.once('exit', () => {
        clearTimeout(hard);
        resolve();
      });
      child.kill(signal);
    });
  }

  private write(pod: KubeObject, status: Record<string, unknown>): void {
    const cur = this.store.find(PODS, pod.metadata.name, pod.metadata.namespace);
    if (!cur || cur.metadata.uid !== pod.metadata.uid) return;
    const next = { ...cur.status, ...status, hostIP: cur.status?.hostIP, podIP: cur.status?.podIP, startTime: cur.status?.startTime ?? now() };
    // Keep the other conditions (PodScheduled); a condition's transition time moves only when its status does.
    const conditions = [...(cur.status?.conditions ?? []).filter((x: any) => !(status.conditions as any[]).some((y) => y.type === x.type)), ...(status.conditions as any[])].map((x: any) => {
      const old = (cur.status?.conditions ?? []).find((y: any) => y.type === x.type);
      return { ...x, lastTransitionTime: old && old.status === x.status ? old.lastTransitionTime : now() };
    });
    this.store.update(PODS, cur.metadata.name, cur.metadata.namespace, { ...cur, status: { ...next, conditions } });
  }
}

/** A container's environment: its `env` values, fieldRefs of the downward API, and `$(VAR)` references to earlier entries. */
function envOf(pod: KubeObject, c: any): Record<string, string> {
  const env: Record<string, string> = {};
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'spec.nodeName': pod.spec?.nodeName,
    'status.podIP': pod.status?.podIP,
    'status.hostIP': pod.status?.hostIP,
  };
  for (const e of c.env ?? []) {
    if (e.valueFrom?.fieldRef) env[e.name] = fields[e.valueFrom.fieldRef.fieldPath] ?? '';
    else env[e.name] = String(e.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, k: string) => env[k] ?? all);
  }
  return env;
}
