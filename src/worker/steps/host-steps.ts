import { createHash } from 'node:crypto';
import { basename, dirname } from 'node:path';
import type { ClusterConfig } from '../../config/schema.js';
import { adaptedUrlProblem } from '../../platform/adapt-config.js';
import { platformOf, type ConfigPlace, type Platform } from '../../platform/index.js';
import type { StepResult } from '../../runbook/engine.js';
import { param, type ParamKey } from '../../runbook/params.js';
import type { StepOf, StepSpec } from '../../runbook/types.js';
import { sshExec, type SshTarget } from '../../ssh/exec.js';
import { sessionWatchLines } from '../../ssh/session-watch.js';
import { quoteScript, sh } from '../../ssh/shell.js';
import { aliveFunction, type AliveCheck } from '../etcd-alive.js';
import { asideDirOf, memberLockLines, memberLockPath, underMemberLock, type MemberLock } from './member-lock.js';

export interface HostStepContext {
  cluster: ClusterConfig;
  /** How etcd runs on the cluster's masters (src/platform). */
  platform: Platform;
  target(memberName: string): SshTarget;
}

/** The member's config and the copy a run keeps of it, from a step's parameters. */
export function configPlaceOf(step: { params: Record<string, unknown> }): ConfigPlace {
  const get = (k: string) => {
    const v = step.params[k];
    if (typeof v !== 'string' || !v) throw new Error(`the step has no parameter "${k}": it was planned by an older version; plan it again`);
    return v;
  };
  return { config: get('config'), configAside: get('configAside') };
}

/** The context a host step needs, for a cluster: its platform, and SSH targets of its members by name. */
export function hostContextOf(cluster: ClusterConfig, target: (name: string) => SshTarget): HostStepContext {
  return { cluster, platform: platformOf(cluster), target };
}


/**
 * How long a host script waits for the member lock: long enough for another
 * execution's move-aside to end (the longest an ordinary script holds the
 * lock: it waits up to stopWaitSeconds for etcd to go, then moves two paths).
 */
export function lockWaitSeconds(cluster: ClusterConfig): number {
  return cluster.etcd.stopWaitSeconds + 60;
}

/** The member lock of the host a step changes (see member-lock.ts). */
export function memberLockOf(step: StepSpec | { params: Record<string, unknown> }, waitSeconds: number): MemberLock {
  return { path: memberLockPath(asideDirOf(step.params)), waitSeconds };
}

/**
 * Runs a bash script remotely; every value in it was quoted by `sh`. It runs
 * under `set -euo pipefail`, so a failed command (also inside a pipe) stops it.
 * Non-zero exit is an error with the output. `signal` (the run lease lost)
 * closes the connection, and the script, watching its session, ends itself.
 */
export async function runScript(target: SshTarget, script: string, opts: { input?: string; timeoutMs?: number; signal?: AbortSignal } = {}) {
  const r = await sshExec(target, `bash -c ${quoteScript(`set -euo pipefail\n${sessionWatchLines()}\n${script}`)}`, { input: opts.input, commandTimeoutMs: opts.timeoutMs ?? 60_000, signal: opts.signal });
  const out = `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim();
  if (r.code !== 0) throw new Error(`on ${target.host}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${out.slice(0, 800)}`);
  return out;
}

/**
 * A line that keeps a copy of `src` at `aside` unless a copy is there already
 * (kept by an earlier execution: the original). The copy goes to a temporary
 * name first and takes the aside name whole (mv), so a copy cut short (its
 * script killed with a dying worker) is never found there and taken for the
 * original. Nothing is copied when `src` does not exist. `preserve`: cp -p.
 */
export function keepCopyLine(src: string, aside: string, opts: { preserve?: boolean } = {}): string {
  const tmp = `${aside}.medic-tmp`;
  return opts.preserve
    ? sh`if [ ! -e ${aside} ] && [ -e ${src} ]; then cp -p ${src} ${tmp}; mv ${tmp} ${aside}; fi`
    : sh`if [ ! -e ${aside} ] && [ -e ${src} ]; then cp ${src} ${tmp}; mv ${tmp} ${aside}; fi`;
}

/**
 * Whether a path exists on a host, from what the host prints on stdout alone,
 * and only when it is one of the two words asked for: a host whose shell warns
 * on stderr at every start (a locale it lacks, a noisy rc file) must not read
 * as "it exists", nor as "it does not".
 */
export async function pathExists(target: SshTarget, path: string, signal?: AbortSignal): Promise<boolean> {
  const r = await sshExec(target, `bash -c ${quoteScript(sh`if [ -e ${path} ]; then echo present; else echo absent; fi`)}`, { commandTimeoutMs: 60_000, signal });
  const said = r.stdout.trim();
  if (r.code !== 0 || (said !== 'present' && said !== 'absent')) {
    throw new Error(`on ${target.host}: looking for ${path} gave exit ${r.code}${r.signal ? ` (${r.signal})` : ''} and ${JSON.stringify(`${r.stdout}${r.stderr}`.trim().slice(0, 300))}, not present or absent`);
  }
  return said === 'present';
}

/** Where a member's etcd may still be found on its host: the addresses the plan named (`listen`), its data dir, its configs. */
export function aliveCheckOf(place: { listen: string[]; clientHost: string; dataDir: string; config: string; configAside: string }): AliveCheck {
  return { addrs: place.listen, dataDir: place.dataDir, configs: [place.config, place.configAside], host: place.clientHost };
}

/**
 * Stops the member the platform's way (kubeadm: its static-pod manifest moved
 * out of the kubelet's directory; systemd: etcd.conf moved aside, the unit
 * disabled and stopped), confirms its etcd is gone (nothing on its client and
 * peer addresses, no etcd process on its data dir), and moves its data dir
 * aside under a name tied to this run. Each part looks first, so a retry never
 * moves a second directory aside.
 */
export async function stopAndMoveAside(ctx: HostStepContext, step: StepOf<'stop-and-move-aside'>, signal?: AbortSignal): Promise<StepResult> {
  const p = (k: ParamKey<typeof step>) => param(step, k);
  const place = { ...configPlaceOf(step), asideDir: p('asideDir'), dataDir: p('dataDir'), dataAside: p('dataAside'), clientHost: p('clientHost'), listen: step.params.listen };
  const wait = ctx.cluster.etcd.stopWaitSeconds;
  const lock = memberLockOf(step, lockWaitSeconds(ctx.cluster));
  const script = underMemberLock(lock, moveAsideScript({ ...place, stop: ctx.platform.stopLines(place), alive: aliveCheckOf(place), waitSeconds: wait }));
  const out = await runScript(ctx.target(step.host!), script, { timeoutMs: (wait + 60 + lock.waitSeconds) * 1000, signal });
  const nothingDone = /already away from/.test(out) && /already moved aside|no data dir/.test(out);
  const waited = /the other execution finished/.test(out) ? 'another execution of this step ran first; ' : '';
  return { summary: nothingDone ? `${waited}already stopped with its data dir aside: nothing done` : `etcd stopped; data dir kept at ${p('dataAside')}`, output: out, skipped: nothingDone };
}

/**
 * The script that stops a member and keeps its data: the platform's `stop`
 * lines (the member's config moved aside, so nothing starts it again), etcd
 * must be gone (bounded wait; see aliveFunction), the data dir moves aside
 * under a name tied to the run. Each part looks first, so running it twice
 * never moves a second directory aside.
 */
export function moveAsideScript(p: { stop: string[]; asideDir: string; dataDir: string; dataAside: string; alive: AliveCheck; waitSeconds: number }): string {
  return [
    'set -euo pipefail',
    aliveFunction(p.alive),
    sh`mkdir -p ${p.asideDir}`,
    ...p.stop,
    sh`for i in $(seq 1 ${p.waitSeconds * 2}); do if ! medic_etcd_alive >/dev/null; then break; fi; sleep 0.5; done`,
    sh`if why=$(medic_etcd_alive); then echo "etcd of this member still $why after "${p.waitSeconds}" s: its data dir is left in place" >&2; exit 4; fi`,
    'echo "etcd is stopped (nothing on its client and peer addresses, no etcd process on its data dir)"',
    sh`if [ -e ${p.dataAside} ]; then echo data dir already moved aside to ${p.dataAside}`,
    sh`elif [ -e ${p.dataDir} ]; then mv ${p.dataDir} ${p.dataAside}; echo data dir moved to ${p.dataAside}`,
    sh`else echo no data dir at ${p.dataDir}; fi`,
  ].join('\n');
}

/**
 * The script that installs a file on a host only if it arrived whole: stdin goes
 * to a temp file beside it, whose size and sha256 must be what was sent before
 * it is moved into place. A failed or cut-off `cat` leaves the old file as it was.
 * With `lock`, all of it runs under the member lock. A file that already holds
 * exactly these bytes is left alone (a second execution of a step, after the
 * first wrote it). `guard` lines run next and may refuse (exit non-zero) before
 * anything is written. `after` lines run last either way, the file in place
 * (the platform's start of etcd: a crash between write and start must not
 * leave it stopped).
 */
export function checkedWriteScript(path: string, content: string | Buffer, guard: string[] = [], lock?: MemberLock, after: string[] = []): string {
  const buf = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  const sha = createHash('sha256').update(buf).digest('hex');
  const tmp = `${dirname(path)}/.${basename(path)}.medic-tmp`;
  return [
    'set -euo pipefail',
    ...(lock ? memberLockLines(lock) : []),
    sh`if [ -f ${path} ] && [ "$(sha256sum < ${path} | cut -d' ' -f1)" = ${sha} ]; then echo ${path} already holds these ${buf.length} bytes, sha256 ${sha.slice(0, 16)}: nothing written; else`,
    ...guard,
    sh`cat > ${tmp}`,
    sh`got=$(wc -c < ${tmp}); sum=$(sha256sum < ${tmp} | cut -d' ' -f1)`,
    sh`if [ "$got" != ${buf.length} ] || [ "$sum" != ${sha} ]; then rm -f ${tmp}; echo "the copy of "${path}" that reached the host is $got bytes (sha256 \${sum:0:16}), not the "${buf.length}" bytes sent (sha256 "${sha.slice(0, 16)}"): "${path}" left as it was" >&2; exit 7; fi`,
    sh`mv ${tmp} ${path}`,
    sh`echo checked on the host: ${buf.length} bytes, sha256 ${sha.slice(0, 16)}`,
    sh`echo wrote ${path}`,
    'fi',
    ...after,
  ].join('\n');
}

/** Writes a file on a host through checkedWriteScript (under the member lock, when given), then runs `after` there. */
export async function writeRemote(target: SshTarget, path: string, content: string, guard: string[] = [], opts: { lock?: MemberLock; signal?: AbortSignal; after?: string[] } = {}): Promise<string> {
  return runScript(target, checkedWriteScript(path, content, guard, opts.lock, opts.after), { input: content, signal: opts.signal, timeoutMs: 60_000 + (opts.lock?.waitSeconds ?? 0) * 1000 });
}

/** The script that prints a file with its byte count and sha256 first, or `absent`. */
export function checkedReadScript(path: string): string {
  return [
    'set -euo pipefail',
    sh`if [ ! -e ${path} ]; then echo absent; exit 0; fi`,
    sh`echo "present $(wc -c < ${path}) $(sha256sum < ${path} | cut -d' ' -f1)"`,
    sh`cat ${path}`,
  ].join('\n');
}

/** A checkedReadScript's output as the file's text (null: absent); output that is not exactly what the host counted is refused. */
export function parseCheckedRead(path: string, stdout: string): string | null {
  const nl = stdout.indexOf('\n');
  const head = nl < 0 ? stdout.trim() : stdout.slice(0, nl);
  if (head === 'absent') return null;
  const m = /^present (\d+) ([0-9a-f]{64})$/.exec(head);
  if (!m || nl < 0) throw new Error(`reading ${path} gave output the bot does not recognise (${JSON.stringify(stdout.slice(0, 80))}): not trusted`);
  const body = Buffer.from(stdout.slice(nl + 1), 'utf8');
  const sha = createHash('sha256').update(body).digest('hex');
  if (body.length !== Number(m[1]) || sha !== m[2]) {
    throw new Error(`reading ${path} gave ${body.length} bytes (sha256 ${sha.slice(0, 16)}) where the host counted ${m[1]} (sha256 ${m[2]!.slice(0, 16)}): truncated or changed on the way, not trusted`);
  }
  return body.toString('utf8');
}

/** Reads a text file on a host whole (null when it does not exist), checked against the host's byte count and sha256. */
export async function readRemote(target: SshTarget, path: string, signal?: AbortSignal): Promise<string | null> {
  const r = await sshExec(target, `bash -c ${quoteScript(checkedReadScript(path))}`, { commandTimeoutMs: 60_000, maxOutputBytes: 4 * 1024 * 1024, signal });
  if (r.code !== 0) throw new Error(`on ${target.host}: reading ${path} failed with exit ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr.trim().slice(0, 400)}`);
  if (r.truncated) throw new Error(`on ${target.host}: ${path} is larger than the bot reads (4 MiB): not trusted`);
  return parseCheckedRead(path, r.stdout);
}

/**
 * Writes the member's config back from the copy moved aside, with the flags a
 * member joining an existing cluster needs, and starts etcd the platform's way
 * (the kubelet, on its manifest; systemctl, on etcd.conf).
 */
export async function writeManifest(ctx: HostStepContext, step: StepOf<'write-manifest'>, liveInitialCluster: string, signal?: AbortSignal): Promise<StepResult> {
  const p = (k: ParamKey<typeof step>) => param(step, k);
  if (liveInitialCluster !== p('initialCluster')) {
    throw new Error(`the member list changed since planning: it now gives --initial-cluster=${liveInitialCluster}, the plan said ${p('initialCluster')}`);
  }
  const place = configPlaceOf(step);
  const noun = ctx.platform.configNoun;
  const target = ctx.target(step.host!);
  // The reads are independent, so they go at once. The template's (another host's) is asked beside them when
  // the plan names one, and used (its failure too) only when this host has no config of its own to start from.
  const peerRead = step.params.templateFrom ? readRemote(ctx.target(p('templateFrom')), p('templateConfig'), signal).then((text) => ({ text }), (err: Error) => ({ err })) : null;
  const [current, aside] = await Promise.all([readRemote(target, place.config, signal), readRemote(target, place.configAside, signal)]).finally(() => peerRead);
  let template = aside ?? '';
  let source = place.configAside;
  if (!template && step.params.templateFrom) {
    // The host had no config left (a rebuilt or wiped master): start from the survivor's, adapted.
    const got = await peerRead!;
    if ('err' in got) throw got.err;
    const theirs = got.text;
    if (theirs === null) throw new Error(`${p('templateFrom')} has no ${noun} at ${p('templateConfig')} to adapt for ${p('name')}`);
    template = ctx.platform.adaptConfig(
      theirs,
      { name: p('templateFrom'), host: p('templateIp'), dataDir: p('templateDataDir'), pkiDir: p('templatePkiDir') },
      { name: p('name'), host: p('targetIp'), dataDir: p('dataDir'), pkiDir: p('targetPkiDir') },
    );
    source = `${p('templateFrom')}'s ${p('templateConfig')}, adapted`;
    const wrong = adaptedUrlProblem((f) => ctx.platform.flag(template, f), p('peerUrl'), p('targetIp'));
    if (wrong) throw new Error(`${source} is not ${p('name')}'s: ${wrong}. Nothing was written; put ${p('name')}'s ${noun} at ${place.config} by hand (${p('templateFrom')}'s with its own addresses) and run the replace again`);
  }
  if (!template) {
    throw new Error(
      `no ${noun} to start ${p('name')} from: ${place.configAside} does not exist (the host had no etcd ${noun} when it was stopped). Put the member's ${noun} at that path (for example another master's, adapted to this host) and run the replace again.`,
    );
  }
  const config = ctx.platform.withFlags(template, { name: p('name'), 'initial-cluster': p('initialCluster'), 'initial-cluster-state': 'existing', 'force-new-cluster': null });
  const start = ctx.platform.startLines(place, 'start');
  const lock = memberLockOf(step, lockWaitSeconds(ctx.cluster));
  if (current !== null && current.trim() === config.trim()) {
    if (!start.length) return { skipped: true, summary: `${place.config} is already written with state existing: nothing done` };
    // Written by an earlier execution that may have died before it started etcd: start it (a no-op when it runs).
    const out = await writeRemote(target, place.config, current, [], { lock, signal, after: start });
    return { summary: `${place.config} was already written with state existing; ${ctx.platform.startText('start')}`, output: out };
  }
  if (current) throw new Error(`${place.config} exists with other contents; refusing to overwrite it (move it away or check the host)`);

  // Looked at again on the host, under the member lock: another execution of this step may have written it since.
  const out = await writeRemote(
    target,
    place.config,
    config,
    [
      sh`if [ -e ${place.config} ]; then echo ${place.config} exists with other contents, refusing to overwrite it: move it away or check the host >&2; exit 10; fi`,
      // The new member must start from an empty data dir, or it would come up as the removed member.
      sh`if [ -e ${p('dataDir')} ] && [ -n "$(ls -A ${p('dataDir')})" ]; then echo ${p('dataDir')} is not empty, refusing to start a removed member on old data >&2; exit 5; fi`,
    ],
    { lock, signal, after: start },
  );
  if (/nothing written/.test(out)) return { skipped: !start.length, summary: `${place.config} was written meanwhile by another execution of this step, with state existing${start.length ? `; ${ctx.platform.startText('start')}` : ': nothing done'}`, output: out };
  return { summary: `${noun} written from ${source} with --initial-cluster-state=existing; ${ctx.platform.startText('start')}`, output: `${out}\n--initial-cluster=${p('initialCluster')}` };
}
