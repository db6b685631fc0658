import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { HostSupervisor } from './host-supervisor.js';

interface Pod {
  file: string;
  hash: string;
  command: string[];
  /** The container's env, where it has one: then it runs with that and a PATH, as in a container, not with the lab's environment. */
  env: Record<string, string> | null;
  child: ChildProcess | null;
  exitedAt: number | null;
  backoffMs: number;
  stopping: Promise<void> | null;
}

/**
 * Plays the kubelet for one host's static pods: every `*.yaml` in the manifests
 * directory is a pod whose first container's command (and args) is run, with
 * its env where it has one (an OpenShift 4 etcd pod's `/bin/sh -c` script runs
 * through the real /bin/sh, so its `exec etcd` line and env entries are what
 * etcd starts with); a manifest moved
 * away stops its pod, a changed one restarts it, and a pod that exits is
 * restarted with backoff (restartPolicy: Always). So the bot stops and starts
 * etcd exactly as an operator does on a kubeadm master: by moving manifests.
 */
export class StaticPodSupervisor implements HostSupervisor {
  private readonly pods = new Map<string, Pod>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;

  constructor(
    readonly host: string,
    private readonly manifestsDir: string,
    private readonly logDir: string,
    private readonly pollMs = 200,
    /** The manifest that is etcd's pod on this host (kubeadm's etcd.yaml, OpenShift 4's etcd-member.yaml). */
    private readonly etcdFile = 'etcd.yaml',
    /** Where pods run (their working directory): the host's root, so a pod's relative paths are the host's, as a container's mounts would be. */
    private readonly podCwd?: string,
    /** The image's own tools, first on a pod's PATH (4.4+'s discover-etcd-initial-cluster). */
    private readonly imageBin?: string,
  ) {
    mkdirSync(logDir, { recursive: true });
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    void this.tick();
  }

  /** The PID running a manifest's pod, or null when none runs. */
  pid(file?: string): number | null {
    const c = this.pods.get(file ?? this.etcdFile)?.child;
    return c && c.exitCode === null && c.signalCode === null ? (c.pid ?? null) : null;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.pods.values()].map((p) => this.stopPod(p, 'SIGKILL')));
    this.pods.clear();
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const files = existsSync(this.manifestsDir) ? readdirSync(this.manifestsDir).filter((f) => f.endsWith('.yaml')) : [];
      for (const [file, pod] of this.pods) {
        if (!files.includes(file)) {
          await this.stopPod(pod, 'SIGTERM');
          this.pods.delete(file);
        }
      }
      for (const file of files) await this.reconcile(file);
    } finally {
      this.ticking = false;
    }
  }

  private async reconcile(file: string): Promise<void> {
    let text: string;
    try {
      text = readFileSync(join(this.manifestsDir, file), 'utf8');
    } catch {
      return; // moved away between readdir and read
    }
    const hash = createHash('sha256').update(text).digest('hex');
    let pod = this.pods.get(file);
    if (pod && pod.hash !== hash) {
      await this.stopPod(pod, 'SIGTERM');
      pod = undefined;
    }
    if (!pod) {
      const spec = podOf(text);
      if (!spec) return; // not a pod manifest we can run; the kubelet would log and skip it too
      pod = { file, hash, command: spec.command, env: spec.env, child: null, exitedAt: null, backoffMs: 500, stopping: null };
      this.pods.set(file, pod);
      this.launch(pod);
      return;
    }
    if (!pod.child && pod.exitedAt !== null && Date.now() - pod.exitedAt >= pod.backoffMs && !pod.stopping) {
      pod.backoffMs = Math.min(pod.backoffMs * 2, 8000);
      this.launch(pod);
    }
  }

  private launch(pod: Pod): void {
    const log = openSync(join(this.logDir, `${pod.file.replace(/\.yaml$/, '')}.log`), 'a');
    const [cmd, ...args] = pod.command;
    const child = spawn(cmd!, args, { stdio: ['ignore', log, log], ...(this.podCwd ? { cwd: this.podCwd } : {}), ...(pod.env ? { env: { PATH: [this.imageBin, process.env.PATH ?? '/usr/bin:/bin'].filter(Boolean).join(':'), ...pod.env } } : {}) });
    closeSync(log);
    pod.child = child;
    pod.exitedAt = null;
    child.on('exit', () => {
      if (pod.child === child) {
        pod.child = null;
        pod.exitedAt = Date.now();
      }
    });
    child.on('error', () => undefined); // reported through 'exit'; a missing binary shows in the log
  }

  private stopPod(pod: Pod, signal: NodeJS.Signals): Promise<void> {
    const child = pod.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    if (pod.stopping) return pod.stopping;
    pod.stopping = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(hard);
        resolve();
      };
      child.once('exit', done);
      // The kubelet's grace period, shortened: etcd can hang on SIGTERM while its peers die.
      const hard = setTimeout(() => child.kill('SIGKILL'), signal === 'SIGKILL' ? 0 : 3000);
      child.kill(signal);
    }).finally(() => {
      pod.stopping = null;
    });
    return pod.stopping;
  }
}

interface ContainerEnv {
  name?: unknown;
  value?: unknown;
  valueFrom?: { fieldRef?: { fieldPath?: unknown } };
}

/** The etcd container's (else the first container's) command and args, and its env (`valueFrom` of metadata.name resolved, as the kubelet does); null when it has no command. */
function podOf(text: string): { command: string[]; env: Record<string, string> | null } | null {
  try {
    const doc = parseYaml(text) as { metadata?: { name?: unknown }; spec?: { containers?: { name?: unknown; command?: unknown[]; args?: unknown[]; env?: ContainerEnv[] }[] } };
    // The etcd container where the pod has several (4.4+'s etcd-pod.yaml runs etcdctl first, for `oc rsh`): the lab plays one process a pod.
    const containers = doc?.spec?.containers ?? [];
    const c = containers.find((x) => ['etcd', 'etcd-member'].includes(String((x as { name?: unknown }).name))) ?? containers[0];
    const cmd = [...(Array.isArray(c?.command) ? c.command : []), ...(Array.isArray(c?.args) ? c.args : [])];
    if (!Array.isArray(c?.command) || cmd.length === 0) return null;
    let env: Record<string, string> | null = null;
    if (Array.isArray(c.env)) {
      env = {};
      for (const e of c.env) {
        if (typeof e?.name !== 'string') continue;
        if (e.value !== undefined && e.value !== null) env[e.name] = String(e.value);
        else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = String(doc.metadata?.name ?? '');
      }
    }
    return { command: cmd.map(String), env };
  } catch {
    return null;
  }
}
