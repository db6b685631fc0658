import { nodesOf, type ClusterConfig, type HostConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { HostKeyMismatch } from '../errors.js';
import type { StepSpec } from '../runbook/types.js';
import { sshExec } from '../ssh/exec.js';
import { quoteScript, sh } from '../ssh/shell.js';
import { ALIVE, SNAPSHOT_TOOL, uniq } from '../steps/host-tools.js';
import { definitionOf, stepProblem } from '../steps/index.js';
import { sshTargetOf } from './ssh-target.js';

/**
 * Is every host a run will touch over SSH ready for it? Reachable, with the
 * pinned host key, and with the tools its steps run there on the PATH. Asked
 * when a run is planned (a plan that cannot be finished is refused) and again
 * right before each destructive step (nothing destructive starts while a host
 * a later step needs is gone).
 */

/** Where a tool comes from, for the message that asks for it. */
const PACKAGE: Record<string, string> = { etcdctl: 'etcd-client', etcdutl: 'etcd-client 3.5 or later', bash: 'bash', flock: 'util-linux', systemctl: 'systemd', openssl: 'openssl' };

/** One step's use of one host. */
export interface HostUse {
  member: string;
  tools: string[];
  /** 0-based index of the step; null for a look the planner takes before there are steps. */
  step: number | null;
  title: string;
  /** How a tool is used there, when `tool` alone says too little (`etcdctl snapshot restore`). */
  how?: Record<string, string>;
  /** The step's own `layout:` lines (src/steps HostTouch.layout): what else it needs on the host. */
  layout?: string[];
}

/** What a run needs of each host, from `from` on; `mayBeDown` are hosts the plan says are down (approved as such). */
export interface HostNeeds {
  uses: Map<string, HostUse[]>;
  mayBeDown: Set<string>;
}

/**
 * The hosts a step touches over SSH and the tools it needs there (its kind's
 * `hosts`, src/steps). A snapshot's host-file archive is left out: the backup
 * is taken through the etcd API and says so when the host files could not be
 * read. A step this version cannot read (planned by an older one) names none:
 * it is refused before it runs (src/steps `unreadableFrom`).
 */
export function hostUses(step: StepSpec, index: number, platformTools: string[] = []): HostUse[] {
  const touch = stepProblem(step) ? undefined : definitionOf(step)?.hosts;
  if (!touch) return [];
  // Every step that changes a host runs the platform's own lines there too (systemctl, on a systemd cluster).
  const tools = uniq([...touch.tools, ...platformTools]);
  const layout = touch.layout?.(step);
  return touch.members(step).map((u) => ({ member: u.member, tools: u.tools ?? tools, step: index, title: step.title, how: touch.how, ...(layout?.length ? { layout } : {}) }));
}

/** `platformTools`: what the cluster's platform runs on the hosts it changes (src/platform `tools`). */
export function hostNeeds(steps: StepSpec[], from = 0, platformTools: string[] = []): HostNeeds {
  const uses = new Map<string, HostUse[]>();
  const mayBeDown = new Set<string>();
  steps.forEach((s, i) => {
    // Hosts the approver confirms down when approving a step (the fence): the plan already counts on them being gone.
    const down = stepProblem(s) ? undefined : definitionOf(s)?.hosts?.down;
    for (const n of down?.(s) ?? []) mayBeDown.add(n);
    if (i < from) return;
    for (const u of hostUses(s, i, platformTools)) uses.set(u.member, [...(uses.get(u.member) ?? []), u]);
  });
  return { uses, mayBeDown };
}

/**
 * Choosing the survivor of a lost quorum reads the revision of each stopped
 * member's database offline (`timeout … etcdctl snapshot status` on its host):
 * where that tool is missing, the most up-to-date member would go unseen.
 */
export function rankingNeeds(members: string[]): HostNeeds {
  const uses = new Map<string, HostUse[]>(
    members.map((n) => [n, [{ member: n, tools: uniq(['bash', ...ALIVE, SNAPSHOT_TOOL]), step: null, title: `choosing the survivor (reading the revision of ${n}'s stopped database)`, how: { [SNAPSHOT_TOOL]: `${SNAPSHOT_TOOL} snapshot status` } }]]),
  );
  return { uses, mayBeDown: new Set() };
}

/**
 * The layout of hosts a planner is about to judge by what it finds there (a
 * replace takes a host without its config for a rebuilt one): a host not laid
 * out as the cluster's platform says is refused as that first. A host that does
 * not answer is left to the plan (it may be the failed member's).
 */
export function layoutNeeds(members: string[], title: string): HostNeeds {
  return { uses: new Map(members.map((n) => [n, [{ member: n, tools: ['bash'], step: null, title }]])), mayBeDown: new Set(members) };
}

/** What one look at a host found. */
export type HostLook =
  | { reachable: true; found: Record<string, boolean>; versions: { etcdctl?: string; etcdutl?: string; etcd?: string }; /** How the host differs from the cluster's platform (src/platform layoutLines). */ layout?: string[] }
  | { reachable: false; hostKey: { pinned: string; seen: string } | null; error: string };

export interface Readiness {
  member: string;
  host: string;
  ok: boolean;
  /** Why not, in words an SRE acts on; empty when ok. */
  reasons: string[];
}

const where = (m: HostConfig) => `${m.name} (${m.host})`;
const stepRef = (u: HostUse) => (u.step === null ? u.title : `step ${u.step + 1} (${u.title})`);

/** "3.4.23" from "etcdctl version: 3.4.23"; [major, minor] or null. */
export function versionOf(line: string | undefined): [number, number] | null {
  const v = /(\d+)\.(\d+)\.\d+/.exec(line ?? '');
  return v ? [Number(v[1]), Number(v[2])] : null;
}

/** Judges one host against what the run needs of it: pure, so every message is unit-tested. */
export function judge(m: HostConfig, uses: HostUse[], look: HostLook, mayBeDown: boolean, platform = 'kubeadm'): Readiness {
  const reasons: string[] = [];
  const steps = uses.map(stepRef).join(', ');
  if (!look.reachable) {
    if (look.hostKey) {
      reasons.push(
        `${where(m)}: host key changed: the host shows ${look.hostKey.seen}, the inventory pins ${look.hostKey.pinned}. The bot does not connect to it (a rebuilt host, or someone in between), and ${steps} run there. If the host was rebuilt, check its key on the console (\`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`) and put it in the inventory's ssh.hostKeyFingerprint for ${m.name}.`,
      );
    } else if (!mayBeDown) {
      reasons.push(`${where(m)} cannot be reached over SSH (${look.error}), and ${steps} run there. Bring its sshd back (or fix the inventory's ssh settings for ${m.name}).`);
    }
    return { member: m.name, host: m.host, ok: reasons.length === 0, reasons };
  }
  for (const misfit of look.layout ?? []) {
    reasons.push(`${where(m)} is not laid out as a ${platform} host: ${misfit}, and ${steps} run there. Check the cluster's platform in the inventory (and ${m.name}'s paths), or the host.`);
  }
  const missing = new Map<string, HostUse>();
  for (const u of uses) for (const t of u.tools) if (look.found[t] === false && !missing.has(t)) missing.set(t, u);
  for (const [tool, u] of missing) {
    const runs = `\`${u.how?.[tool] ?? tool}\``;
    const alt = tool === SNAPSHOT_TOOL && look.versions.etcdutl ? ` (etcdutl ${versionOf(look.versions.etcdutl)?.join('.') ?? ''} is there, but this step runs etcdctl)` : '';
    reasons.push(`${tool} not found on ${where(m)}: it is not on the PATH of ${m.ssh?.user} over SSH${alt}, and ${stepRef(u)} runs ${runs} there. Install ${PACKAGE[tool] ?? 'coreutils'} on ${m.name}.`);
  }
  const needsSnapshotTool = uses.find((u) => u.tools.includes(SNAPSHOT_TOOL));
  const v = versionOf(look.versions.etcdctl);
  if (needsSnapshotTool && look.found[SNAPSHOT_TOOL] && v && (v[0] > 3 || (v[0] === 3 && v[1] >= 6))) {
    reasons.push(
      `etcdctl ${v.join('.')} on ${where(m)} has no \`snapshot restore\` or \`snapshot status\` any more (etcd 3.6 moved them to etcdutl): ${stepRef(needsSnapshotTool)} runs \`${needsSnapshotTool.how?.[SNAPSHOT_TOOL] ?? SNAPSHOT_TOOL}\` there. Put an etcdctl 3.5 or older on ${m.name}'s PATH.`,
    );
  }
  return { member: m.name, host: m.host, ok: reasons.length === 0, reasons };
}

/** The probe script: which tools are on the PATH, and (where etcdctl is needed) the versions of etcd's tools. Bash builtins only. */
export function lookScript(tools: string[], layout: string[] = []): string {
  return [
    ...tools.filter((t) => t !== 'bash').map((t) => sh`if command -v ${t} >/dev/null 2>&1; then echo tool:${t}=1; else echo tool:${t}=0; fi`),
    'echo tool:bash=1',
    ...(tools.includes(SNAPSHOT_TOOL) ? versionLines : []),
    ...layout,
  ].join('\n');
}

// First line only, read by bash itself: `head` may be missing too.
const versionLines = [
  'if command -v etcdctl >/dev/null 2>&1; then v=$(ETCDCTL_API=3 etcdctl version 2>&1); echo "version:etcdctl=${v%%$\'\\n\'*}"; fi',
    'if command -v etcdutl >/dev/null 2>&1; then v=$(etcdutl version 2>&1); echo "version:etcdutl=${v%%$\'\\n\'*}"; fi',
    'if command -v etcd >/dev/null 2>&1; then v=$(etcd --version 2>&1); echo "version:etcd=${v%%$\'\\n\'*}"; fi',
];

/** One SSH session to a host: never throws, a failure is part of the answer. */
export async function lookAt(m: HostConfig, tools: string[], timeoutMs = 15_000, layout: string[] = []): Promise<HostLook> {
  try {
    const r = await sshExec(sshTargetOf(m), `bash -c ${quoteScript(lookScript(tools, layout))}`, { connectTimeoutMs: 5000, commandTimeoutMs: timeoutMs });
    // Without bash on the PATH the script never ran: every step would fail the same way.
    if (r.code === 127 && !/tool:/.test(r.stdout)) return { reachable: true, found: { bash: false }, versions: {} };
    if (r.code !== 0) return { reachable: false, hostKey: null, error: `the probe exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}` };
    const found: Record<string, boolean> = {};
    const versions: Record<string, string> = {};
    const misfit: string[] = [];
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('layout:')) misfit.push(line.slice('layout:'.length));
      const t = /^tool:([^=]+)=([01])$/.exec(line);
      if (t) found[t[1]!] = t[2] === '1';
      const v = /^version:([a-z]+)=(.*)$/.exec(line);
      if (v) versions[v[1]!] = v[2]!;
    }
    return { reachable: true, found, versions, layout: misfit };
  } catch (err) {
    if (err instanceof HostKeyMismatch) return { reachable: false, hostKey: { pinned: err.expected, seen: err.actual }, error: err.message };
    return { reachable: false, hostKey: null, error: (err as Error).message };
  }
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping order. */
async function bounded<T, R>(items: T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/** Looks at every host the needs name, once each, in parallel (bounded), and judges each. */
export async function checkHosts(cluster: ClusterConfig, needs: HostNeeds, opts: { parallel?: number; look?: typeof lookAt } = {}): Promise<Readiness[]> {
  const look = opts.look ?? lookAt;
  const platform = platformOf(cluster);
  const members = [...needs.uses.keys()].map((name) => {
    const m = nodesOf(cluster).find((x) => x.name === name);
    if (!m) throw new Error(`the plan touches ${name}, which is not in ${cluster.name}'s inventory`);
    return m;
  });
  return bounded(members, opts.parallel ?? 8, async (m) => {
    const uses = needs.uses.get(m.name)!;
    const tools = [...new Set(uses.flatMap((u) => u.tools))];
    // A node that is not a master runs no etcd: the platform's layout of a master is not asked of it.
    const master = cluster.members.find((x) => x.name === m.name);
    const layout = [...(master ? platform.layoutLines(master) : []), ...new Set(uses.flatMap((u) => u.layout ?? []))];
    return judge(m, uses, await look(m, tools, undefined, layout), needs.mayBeDown.has(m.name), platform.kind);
  });
}

/** Every reason the hosts are not ready for what is asked of them (a run's steps from `from` on); null when all are. */
export async function hostsNotReady(cluster: ClusterConfig, steps: StepSpec[] | HostNeeds, from = 0, opts: Parameters<typeof checkHosts>[2] = {}): Promise<string | null> {
  const results = await checkHosts(cluster, Array.isArray(steps) ? hostNeeds(steps, from, platformOf(cluster).tools) : steps, opts);
  const reasons = results.flatMap((r) => r.reasons);
  return reasons.length ? reasons.join('\n') : null;
}
