import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { BackupStore } from '../../backup/store.js';
import { hashKvAt, reverifyBackup } from '../../backup/take.js';
import type { ClusterConfig } from '../../config/schema.js';
import type { ApiserverPlace, ConfigPlace, Platform } from '../../platform/index.js';
import { hexId, type EtcdPool } from '../../etcd/pool.js';
import type { StepResult } from '../../runbook/engine.js';
import { param, type ParamKey } from '../../runbook/params.js';
import type { StepOf } from '../../runbook/types.js';
import { sshExec, type SshTarget } from '../../ssh/exec.js';
import { sessionWatchLines } from '../../ssh/session-watch.js';
import { quoteScript, sh } from '../../ssh/shell.js';
import { aliveFunction } from '../etcd-alive.js';
import { aliveCheckOf, checkedReadScript, configPlaceOf, lockWaitSeconds, memberLockOf, moveAsideScript, keepCopyLine, parseCheckedRead, pathExists, readRemote, runScript, writeRemote } from './host-steps.js';
import { memberLockLines, memberLockPath, underMemberLock, type MemberLock } from './member-lock.js';

export interface QuorumStepContext {
  cluster: ClusterConfig;
  platform: Platform;
  pool: EtcdPool;
  store: BackupStore;
  target(memberName: string): SshTarget;
}


interface Place {
  name: string;
  config: string;
  configAside: string;
  asideDir: string;
  dataDir: string;
  dataAside: string;
  clientHost: string;
  /** host:port of its client and peer URLs, as planned. */
  listen: string[];
}

/**
 * Fences the members that lost quorum: on each host, refuse if etcd still
 * listens (before changing anything there), else move its manifest and data
 * dir aside so the kubelet cannot bring an old member back. Hosts the approver
 * confirmed down (unreachable over SSH) are left alone and named.
 */
export async function fence(ctx: QuorumStepContext, step: StepOf<'fence'>, signal?: AbortSignal): Promise<StepResult> {
  const places: Place[] = step.params.hosts;
  const unconfirmed = step.params.unconfirmed;
  // The hosts are fenced at once, each by its own script that checks before it changes anything there: one
  // host's answer does not wait on another's. Every script ends before the step does, whatever the others did.
  const settled = await Promise.allSettled(
    places.map(async (p) => {
      if (unconfirmed.includes(p.name)) return `${p.name}: confirmed down by the approver; not touched`;
      const refuseIfRunning = step.params.stopRunning !== true;
      const alive = aliveCheckOf(p);
      const lock: MemberLock = { path: memberLockPath(p.asideDir), waitSeconds: lockWaitSeconds(ctx.cluster) };
      const script = underMemberLock(
        lock,
        [
          aliveFunction(alive),
          refuseIfRunning
            ? sh`if why=$(medic_etcd_alive); then echo "etcd of "${p.name}" still $why: it is not dead, refusing to fence it" >&2; exit 6; fi`
            : '',
          moveAsideScript({ ...p, stop: ctx.platform.stopLines(p), alive, waitSeconds: 30 }),
        ].join('\n'),
      );
      const out = await runScript(ctx.target(p.name), script, { timeoutMs: 90_000 + lock.waitSeconds * 1000, signal });
      return `${p.name}: ${out.replace(/\n/g, '; ')}`;
    }),
  );
  if (settled.some((r) => r.status === 'rejected')) throw new Error(fenceFailure(places.map((p, i) => ({ name: p.name, outcome: settled[i]! }))));
  const lines = settled.map((r) => (r as PromiseFulfilledResult<string>).value);
  return { summary: `fenced ${places.map((p) => p.name).join(', ')}`, output: lines.join('\n') };
}

/**
 * Why a fence failed, host by host, first what each host was left as: one that
 * refused before it changed anything there (etcd still runs, the member lock
 * held by another execution, no flock) is said to be left as it was; every
 * other one (fenced, or failed partway) may be fenced. The run's put-back
 * reads these lines (fenceUntouched, src/steps/fence.ts) to name the hosts
 * this fence left stopped, so they are said whatever the others did.
 */
export function fenceFailure(hosts: { name: string; outcome: PromiseSettledResult<string> }[]): string {
  const bad = hosts.filter((h) => h.outcome.status === 'rejected');
  const lines = hosts.map(({ name, outcome }) => {
    if (outcome.status === 'fulfilled') return `• ${outcome.value}`;
    const why = (outcome.reason as Error).message;
    return REFUSED_BEFORE_ACTING.test(why) ? `• ${name}${UNTOUCHED}: ${why}` : `• ${name}, failed partway (it may be fenced): ${why}`;
  });
  return `fencing failed on ${bad.map((h) => h.name).join(', ')} of ${hosts.map((h) => h.name).join(', ')}:\n${lines.join('\n')}`;
}

/** What a fence script prints when it refused before it changed anything on its host. */
const REFUSED_BEFORE_ACTING = /refusing to fence it|nothing was done by this one|the member lock cannot be taken, nothing was done/;
/** How fenceFailure marks a host it left as it was. */
export const UNTOUCHED = ', left as it was (refused before changing anything there)';

async function readConfig(target: SshTarget, path: string, signal?: AbortSignal): Promise<string> {
  return (await readRemote(target, path, signal)) ?? '';
}

/** Polls one member until it leads a one-member cluster (and, if given, with a raft term above `afterTerm`). */
async function waitSingleLeader(ctx: QuorumStepContext, endpoint: string, afterTerm: number, timeoutMs: number, signal?: AbortSignal): Promise<{ id: string; term: number; revision: number; clusterId: string }> {
  const client = ctx.pool.client(ctx.cluster, endpoint);
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (let first = true; first || Date.now() < deadline; first = false) {
    // A worker that lost its run lease stops waiting (and so does nothing more on the host).
    if (signal?.aborted) throw new Error(`stopped waiting for ${endpoint} to lead alone (last: ${last}): ${(signal.reason as Error)?.message ?? 'aborted'}`);
    try {
      const [st, list] = await Promise.all([client.maintenance.status(), client.cluster.memberList({})]);
      const term = Number(st.raftTerm);
      if (list.members.length === 1 && st.leader === st.header.member_id && term > afterTerm) {
        return { id: st.header.member_id, term, revision: Number(st.header.revision), clusterId: st.header.cluster_id };
      }
      last = `${list.members.length} members, leader ${hexId(st.leader)}, term ${term}`;
    } catch (err) {
      last = (err as Error).message.slice(0, 200);
    }
    // Only etcd's own start and election are waited on here: looked at often, each look a local status call.
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${endpoint} did not come up as the leader of a one-member cluster within ${timeoutMs / 1000} s (last: ${last})`);
}

async function termOf(ctx: QuorumStepContext, endpoint: string): Promise<number> {
  try {
    return Number((await ctx.pool.client(ctx.cluster, endpoint).maintenance.status()).raftTerm);
  } catch {
    return 0;
  }
}

/**
 * The survivor becomes a one-member cluster: its config gets
 * --force-new-cluster (ETCD_FORCE_NEW_CLUSTER in etcd.conf), etcd restarts and
 * leads alone; then the flag is taken out and etcd restarts again. The flag
 * never stays: the step ends by reading the config back.
 */
export async function forceNewCluster(ctx: QuorumStepContext, step: StepOf<'force-new-cluster'>, signal?: AbortSignal): Promise<StepResult> {
  const p = (k: ParamKey<typeof step>) => param(step, k);
  const place = configPlaceOf(step);
  const target = ctx.target(p('name'));
  const endpoint = p('endpoint');
  const out: string[] = [];
  const lock = memberLockOf(step, lockWaitSeconds(ctx.cluster));
  const restart = ctx.platform.startLines(place, 'restart');

  // Keep the original once (every later write starts from it) and read it back, in one session with the host.
  const original = await keepAsideAndRead(target, lock, p('asideDir'), place.config, place.configAside, signal);
  if (!original) throw new Error(`no ${ctx.platform.configNoun} for ${p('name')} at ${place.config} to start from`);
  const clean = ctx.platform.withFlags(original, { 'force-new-cluster': null });
  const forced = ctx.platform.withFlags(original, { 'force-new-cluster': 'true' });

  let single: { id: string; term: number; revision: number; clusterId: string } | null = null;
  // What the config holds now, when this execution wrote it itself (a checked write): not read again.
  let written: string | null = null;
  try {
    // One look (a retry after a crash may find the work done): not a wait.
    single = await waitSingleLeader(ctx, endpoint, -1, 1, signal);
    out.push(`${p('name')} already leads a one-member cluster: not forced again`);
  } catch {
    const before = await termOf(ctx, endpoint);
    await writeRemote(target, place.config, forced, [], { lock, signal, after: restart });
    written = forced;
    out.push(`wrote ${place.config} with --force-new-cluster${restart.length ? `; ${ctx.platform.startText('restart')}` : ''}`);
    single = await waitSingleLeader(ctx, endpoint, before - 1, 120_000, signal);
    out.push(`${p('name')} (${hexId(single.id)}) leads a one-member cluster, term ${single.term}, revision ${single.revision}`);
  }

  const current = written ?? (await readConfig(target, place.config, signal));
  let final: string;
  if (current.trim() !== clean.trim()) {
    const before = await termOf(ctx, endpoint);
    await writeRemote(target, place.config, clean, [], { lock, signal, after: restart });
    out.push(`wrote ${place.config} without --force-new-cluster${restart.length ? `; ${ctx.platform.startText('restart')}` : ''}`);
    // A restart shows as a new term; waiting for it avoids mistaking the old process for the new one.
    // The config is read back from the host meanwhile: the wait is etcd's, the read is the host's.
    const [leads, readBack] = await Promise.allSettled([waitSingleLeader(ctx, endpoint, before, 120_000, signal), readConfig(target, place.config, signal)]);
    if (leads.status === 'rejected') throw leads.reason;
    if (readBack.status === 'rejected') throw readBack.reason;
    single = leads.value;
    final = readBack.value;
    out.push(`restarted without the flag: term ${single.term}, revision ${single.revision}`);
  } else {
    // Just read from the host, without the flag: that read is the check.
    final = current;
  }
  if (ctx.platform.flag(final, 'force-new-cluster') !== undefined) throw new Error(`${place.config} still has --force-new-cluster after it was written without it`);
  return {
    summary: `${p('name')} leads a one-member cluster (cluster ID ${hexId(single.clusterId)}) at revision ${single.revision}; --force-new-cluster is out of the ${ctx.platform.configNoun}`,
    output: out.join('\n'),
  };
}

/**
 * Under the member lock: copies the config to its aside name unless a copy is
 * there already (the original, kept from an earlier execution), then prints
 * that copy checked as readRemote checks it (byte count and sha256), after a
 * line that marks where it starts (the lock may say it waited, before it).
 */
async function keepAsideAndRead(target: SshTarget, lock: MemberLock, asideDir: string, config: string, configAside: string, signal?: AbortSignal): Promise<string | null> {
  const mark = KEPT_READ_MARK;
  const script = underMemberLock(lock, keepAsideScript(asideDir, config, configAside));
  const r = await sshExec(target, `bash -c ${quoteScript(`set -euo pipefail\n${sessionWatchLines()}\n${script}`)}`, { commandTimeoutMs: 60_000 + lock.waitSeconds * 1000, maxOutputBytes: 4 * 1024 * 1024, signal });
  if (r.code !== 0) throw new Error(`on ${target.host}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${`${r.stdout}\n${r.stderr}`.trim().slice(0, 800)}`);
  if (r.truncated) throw new Error(`on ${target.host}: ${configAside} is larger than the bot reads (4 MiB): not trusted`);
  const at = r.stdout.indexOf(`${mark}\n`);
  if (at < 0) throw new Error(`on ${target.host}: keeping ${config} aside gave output the bot does not recognise (${JSON.stringify(r.stdout.slice(0, 80))}): not trusted`);
  return parseCheckedRead(configAside, r.stdout.slice(at + mark.length + 1));
}

const KEPT_READ_MARK = 'medic-checked-read-follows';

/**
 * The host side of keepAsideAndRead (run under the member lock): the config
 * copied to its aside name unless a copy is there, then that copy printed
 * checked, after KEPT_READ_MARK. The copy is made whole or not at all
 * (keepCopyLine): a copy cut short would be taken for the original by the
 * next execution, which would start etcd from half a config.
 */
export function keepAsideScript(asideDir: string, config: string, configAside: string): string {
  return [
    'set -euo pipefail',
    sh`mkdir -p ${asideDir}`,
    // No config to keep: nothing is copied, and the read says it is absent.
    keepCopyLine(config, configAside),
    sh`echo ${KEPT_READ_MARK}`,
    checkedReadScript(configAside),
  ].join('\n');
}

export async function verifyBackup(ctx: QuorumStepContext, step: StepOf<'verify-backup'>): Promise<StepResult> {
  const facts = await ctx.store.get(ctx.cluster.name, param(step, 'backupId'));
  if (!facts) throw new Error(`backup ${param(step, 'backupId')} is not in the store`);
  await reverifyBackup(ctx.store, facts);
  return { summary: `backup ${facts.id} verified: ${facts.bytes} bytes, revision ${facts.revision}, sha256 ${facts.sha256.slice(0, 16)}… as recorded` };
}

/**
 * The survivor's data replaced by a verified snapshot, as a one-member cluster
 * with a new cluster token (or, for /etcd restore, as one member of the
 * restored cluster): stop it, move its data dir aside, upload the snapshot,
 * `etcdctl snapshot restore` on the host, check the restored database offline
 * against the backup's revision, and only then write the manifest that starts
 * etcd. A data dir left by an interrupted restore is moved aside, never reused.
 */
export async function restoreSnapshot(ctx: QuorumStepContext, step: StepOf<'restore-snapshot'>, signal?: AbortSignal): Promise<StepResult> {
  const p = (k: ParamKey<typeof step>) => param(step, k);
  const target = ctx.target(p('name'));
  const facts = await ctx.store.get(ctx.cluster.name, p('backupId'));
  if (!facts) throw new Error(`backup ${p('backupId')} is not in the store`);
  const cp = configPlaceOf(step);
  const runId = cp.configAside.split('.').pop()!;
  const marker = `${p('asideDir')}/restored-${runId}`;
  const lock = `${p('asideDir')}/restore.lock`;
  // Another execution's restore may hold the member lock for as long as a restore takes.
  const member = memberLockOf(step, RESTORE_SECONDS);
  const out: string[] = [];
  // One member alone (restore-quorum), or every member from the same snapshot (restore).
  const initial = step.params.initialCluster ? p('initialCluster') : `${p('name')}=${p('peerUrl')}`;

  // Asked of stdout alone: a warning the host's shell prints on stderr is not a marker.
  let done = await pathExists(target, marker, signal);
  if (!done) {
    await reverifyBackup(ctx.store, facts);
    const pl = place(step);
    const wait = ctx.cluster.etcd.stopWaitSeconds;
    // Under the lock, the marker is looked at again: another execution may have restored it meanwhile.
    const stop = await runScript(target, underMemberLock(member, [alreadyRestored(marker), moveAsideScript({ ...pl, stop: ctx.platform.stopLines(pl), alive: aliveCheckOf(pl), waitSeconds: wait })].join('\n')), {
      timeoutMs: (wait + 60 + member.waitSeconds) * 1000,
      signal,
    });
    out.push(stop);
    done = ALREADY_RESTORED.test(stop);
  }
  if (!done) {
    const remote = `${p('asideDir')}/snapshot_${facts.id}.db`;
    // Uploaded under a name of this execution's own, without the lock (a transfer may stall); the restore script moves it into place under the lock.
    const upload = `${remote}.part-${randomBytes(4).toString('hex')}`;
    const up = await sshExec(target, `bash -c ${quoteScript(uploadScript(upload, facts.bytes))}`, { input: createReadStream(ctx.store.snapshotPath(facts)), commandTimeoutMs: 600_000, signal });
    if (up.code !== 0) throw new Error(`upload of the snapshot to ${p('name')} failed: ${up.stderr.trim()}`);
    out.push(
      await runScript(
        target,
        restoreScript({ remote, upload, bytes: facts.bytes, revision: facts.revision, name: p('name'), initialCluster: initial, token: p('token'), peerUrl: p('peerUrl'), dataDir: p('dataDir'), log: `${p('asideDir')}/restore-${runId}.log`, partialAside: `${p('dataDir')}.partial-${runId}`, marker, lock, memberLock: member }),
        { timeoutMs: (RESTORE_SECONDS + member.waitSeconds) * 1000, signal },
      ),
    );
  } else {
    out.push('snapshot already restored and verified on the host');
  }
  const original = await readConfig(target, cp.configAside, signal);
  if (!original) throw new Error(`no ${ctx.platform.configNoun} for ${p('name')} at ${cp.configAside} to start from`);
  const config = ctx.platform.withFlags(original, { 'force-new-cluster': null, 'initial-cluster': initial, 'initial-cluster-token': p('token'), 'initial-cluster-state': 'new' });
  const current = await readConfig(target, cp.config, signal);
  // etcd starts only on the database this run restored and checked, never on an empty or partial one:
  // the guard runs before the config is written and, where a command starts etcd, again right before it.
  const guard = startGuard({ lock, marker, dataDir: p('dataDir'), backupId: facts.id });
  const start = restoreStartLines(ctx.platform, cp, !!step.params.initialCluster);
  if (current.trim() !== config.trim() || start.length) {
    out.push(await writeRemote(target, cp.config, config, guard, { lock: member, signal, after: start.length ? [...guard, ...start] : [] }));
  }
  if (step.params.initialCluster) {
    // The other members start from the same snapshot; the verify step waits for all of them.
    return { summary: `backup ${facts.id} restored onto ${p('name')} (revision ${facts.revision}, checked offline) as a member of ${p('initialCluster')}; ${ctx.platform.startText('start', { wait: false })}`, output: out.join('\n') };
  }
  const single = await waitSingleLeader(ctx, p('endpoint'), -1, 120_000, signal);
  const kv = await checkHashKv(ctx, p('endpoint'), facts);
  return {
    summary: `backup ${facts.id} restored onto ${p('name')} (revision ${facts.revision}, checked offline${kv}): it leads a one-member cluster (ID ${hexId(single.clusterId)}) at revision ${single.revision}`,
    output: out.join('\n'),
  };
}

/**
 * The lines that start a restored member's etcd once its guard has passed.
 * `oneOfSeveral` (/etcd restore: every member from the snapshot, one step
 * each): the start does not wait for etcd to be up, which it is only once a
 * quorum of the restored members runs, the members restored by the next steps
 * included; the verify step waits for all of them.
 */
export function restoreStartLines(platform: Platform, place: ConfigPlace, oneOfSeveral: boolean): string[] {
  return platform.startLines(place, 'start', { wait: !oneOfSeveral });
}

/**
 * The restored member's KV hash at the backup's revision against the one recorded
 * when the backup was taken: the same keys and values, not only the same revision.
 * Backups taken before the hash was recorded are checked by revision alone.
 */
async function checkHashKv(ctx: QuorumStepContext, endpoint: string, facts: { id: string; revision: number; hashKv?: number }): Promise<string> {
  if (facts.hashKv === undefined) return '';
  const got = await hashKvAt(ctx.pool.client(ctx.cluster, endpoint), facts.revision);
  if (got !== facts.hashKv) {
    throw new Error(`the restored member's KV hash at revision ${facts.revision} is ${got}, backup ${facts.id} recorded ${facts.hashKv}: its data is not the backup's. It runs as a one-member cluster; do not add members to it, restore again from another backup`);
  }
  return `, KV hash ${got} as recorded`;
}

/** How long a host's restore (and the upload before it) may take; a restore holds the member lock that long at most. */
const RESTORE_SECONDS = 600;

const ALREADY_RESTORED = /a restore of this run is already verified on this host/;

/** A line that ends a script, doing nothing, when this run's restore of the member is already verified. */
function alreadyRestored(marker: string): string {
  return sh`if [ -e ${marker} ]; then echo a restore of this run is already verified on this host, ${marker} is there: nothing done; exit 0; fi`;
}

/**
 * The upload of a snapshot: stdin into `path`, which must end up `bytes` long.
 * A transfer cut short (the connection closed: the worker lost its lease or
 * died) leaves no partial file behind.
 */
export function uploadScript(path: string, bytes: number): string {
  return [
    'set -euo pipefail',
    sh`medic_part=${path}`,
    `trap 'rm -f "$medic_part"' EXIT`,
    'cat > "$medic_part"',
    sh`got=$(wc -c < "$medic_part"); if [ "$got" != ${bytes} ]; then echo "the snapshot that reached the host is $got bytes, the backup "${bytes} >&2; exit 8; fi`,
    'trap - EXIT',
  ].join('\n');
}

/**
 * The host side of a restore. Every status counts: the uploaded file must be
 * the backup's size, `etcdctl snapshot restore` must succeed (its log is kept
 * and its last lines shown), and the restored database, read offline, must be
 * at the backup's revision. The marker that lets etcd start is written last.
 * With `memberLock` it runs under the member lock, and a restore this run
 * already verified (the marker) is not done again; with `upload`, that file
 * becomes `remote` under the lock.
 */
export function restoreScript(r: { remote: string; upload?: string; bytes: number; revision: number; name: string; initialCluster: string; token: string; peerUrl: string; dataDir: string; log: string; partialAside: string; marker: string; lock: string; memberLock?: MemberLock }): string {
  return [
    'set -euo pipefail',
    ...(r.memberLock ? [...memberLockLines(r.memberLock), ...(r.upload ? [sh`if [ -e ${r.marker} ]; then rm -f ${r.upload}; fi`] : []), alreadyRestored(r.marker)] : []),
    // One restore of a member at a time, whoever runs it (a second execution of the step after a lapsed
    // lease): the remote script of the first goes on even when its worker lost the run.
    ...hostLock(r.lock, 75, 'another restore of this member is still running on this host: not starting a second one'),
    ...(r.upload ? [sh`mv ${r.upload} ${r.remote}`] : []),
    sh`got=$(wc -c < ${r.remote}); if [ "$got" != ${r.bytes} ]; then echo "the snapshot uploaded to "${r.remote}" is $got bytes, the backup "${r.bytes} >&2; exit 8; fi`,
    // The marker vouches for the data dir as it is now: taken back before that dir changes, so a restore
    // that fails from here on (a second execution of the step) leaves nothing the manifest's guard would start etcd on.
    sh`rm -f ${r.marker}`,
    // A data dir here can only be what an interrupted restore left: kept aside, never reused or deleted.
    sh`if [ -e ${r.dataDir} ]; then aside=${r.partialAside}-$(date +%Y%m%d%H%M%S); mv ${r.dataDir} "$aside"; echo "a data dir left by an earlier, unfinished restore was moved aside to $aside"; fi`,
    'rc=0',
    sh`ETCDCTL_API=3 etcdctl snapshot restore ${r.remote} --name ${r.name} --initial-cluster ${r.initialCluster} --initial-cluster-token ${r.token} --initial-advertise-peer-urls ${r.peerUrl} --data-dir ${r.dataDir} > ${r.log} 2>&1 || rc=$?`,
    sh`if [ "$rc" != 0 ]; then echo "etcdctl snapshot restore failed (exit $rc); etcd was not started. Its last lines (all in "${r.log}"):" >&2; tail -n 5 ${r.log} >&2; exit "$rc"; fi`,
    sh`tail -n 2 ${r.log}`,
    sh`st=$(ETCDCTL_API=3 etcdctl snapshot status ${r.dataDir}/member/snap/db -w json 2>&1) || { echo "etcdctl snapshot status of the restored "${r.dataDir}"/member/snap/db failed: $st" >&2; exit 8; }`,
    `rev=$(printf '%s' "$st" | grep -oE '"revision":[0-9]+' | cut -d: -f2 || true)`,
    sh`if [ "$rev" != ${r.revision} ]; then echo "the restored database in "${r.dataDir}" is at revision \${rev:-unknown}, the backup at "${r.revision}": etcd was not started on it" >&2; exit 8; fi`,
    sh`echo "restored database checked offline: revision $rev, as the backup"`,
    sh`touch ${r.marker}`,
  ].join('\n');
}

function place(step: StepOf<'restore-snapshot'>) {
  const p = (k: ParamKey<typeof step>) => param(step, k);
  return { ...configPlaceOf(step), asideDir: p('asideDir'), dataDir: p('dataDir'), dataAside: p('dataAside'), clientHost: p('clientHost'), listen: step.params.listen };
}

/**
 * Stops or starts the API servers of the masters the platform's way (kubeadm:
 * their static pod manifests moved aside and back; systemd: their units), so
 * nothing writes to etcd mid-restore. A start brings back only what this run stopped.
 */
export async function apiservers(ctx: QuorumStepContext, step: StepOf<'apiservers'>, signal?: AbortSignal): Promise<StepResult> {
  const hosts: ApiserverPlace[] = step.params.hosts;
  const action = param(step, 'action') === 'start' ? 'start' : 'stop';
  const lines: string[] = [];
  const missing: string[] = [];
  for (const h of hosts) {
    const lock: MemberLock = { path: memberLockPath(h.asideDir), waitSeconds: lockWaitSeconds(ctx.cluster) };
    const script = ctx.platform.apiserverLines(h, action).join('\n');
    const out = await runScript(ctx.target(h.name), underMemberLock(lock, script), { timeoutMs: 120_000 + lock.waitSeconds * 1000, signal });
    lines.push(`${h.name}: ${out}`);
    if (action === 'start') missing.push(...[...out.matchAll(/^missing: (\S+)/gm)].map((x) => `${h.name}: ${x[1]}`));
  }
  const summary = `${ctx.platform.apiserverNoun} ${action === 'start' ? 'started again' : 'stopped'} on ${hosts.map((h) => h.name).join(', ')}`;
  if (!missing.length) return { summary, output: lines.join('\n') };
  // The control plane is not whole after the run: said as the run's end, not hidden in the output.
  const caveat = `etcd restored, but not every control-plane pod runs again: no manifest in the kubelet's directory for ${missing.join('; ')} (nor one kept aside by this run). Put each back from its last revision (OpenShift 4: /etc/kubernetes/static-pod-resources/<pod>-<revision>/)`;
  return { summary: `${summary}; ${caveat}`, output: lines.join('\n'), caveat };
}

/** Whether a profile's start lines brought something back, by what they print then (OpenShift 4 "started: …", kubeadm "… put back", systemd "… started again"). */
export function broughtBack(out: string): boolean {
  return /^started: |put back$|started again$/m.test(out);
}

/**
 * What a run that ends early (rejected at the fence's gate, cancelled, failed
 * mid-restore) puts back of its stop of the API servers: on each master, what
 * this run moved aside goes back (the platform's start lines, which leave a
 * manifest put back meanwhile alone), so a restore that never happened does
 * not leave the control plane down. Host by host: one that cannot be reached
 * is named with the command that puts its pods back by hand. null when
 * nothing of this run's was still aside.
 */
export async function undoApiserversStop(ctx: QuorumStepContext, step: StepOf<'apiservers'>): Promise<string | null> {
  if (param(step, 'action') !== 'stop') return null;
  const back: string[] = [];
  const bad: string[] = [];
  for (const h of step.params.hosts as ApiserverPlace[]) {
    const lock: MemberLock = { path: memberLockPath(h.asideDir), waitSeconds: lockWaitSeconds(ctx.cluster) };
    try {
      const out = await runScript(ctx.target(h.name), underMemberLock(lock, ctx.platform.apiserverLines(h, 'start').join('\n')), { timeoutMs: 120_000 + lock.waitSeconds * 1000 });
      if (broughtBack(out)) back.push(h.name);
    } catch (err) {
      bad.push(`:x: ${ctx.platform.apiserverNoun} could NOT be started again on ${h.name} (${(err as Error).message.slice(0, 300)}). On ${h.name}: ${ctx.platform.apiserverText(h, 'start')}`);
    }
  }
  const said = back.length ? [`${ctx.platform.apiserverNoun} started again on ${back.join(', ')}: what this run had stopped is back`] : [];
  return [...said, ...bad].join('\n') || null;
}

/** Lines that hold `lock` (flock) until the script ends, or exit `code` at once when another script holds it. */
export function hostLock(lock: string, code: number, why: string): string[] {
  return [sh`exec 9>>${lock}`, sh`flock -n 9 || { echo ${why}" (lock "${lock}")" >&2; exit ${code}; }`];
}

/**
 * What must hold before the manifest that starts a restored member is written:
 * no restore of it running (the same lock), and the marker of a verified
 * restore beside a non-empty database. Held to the end of the write.
 */
export function startGuard(g: { lock: string; marker: string; dataDir: string; backupId: string }): string[] {
  return [
    ...hostLock(g.lock, 9, 'a restore of this member is still running on this host: not starting etcd'),
    sh`if [ ! -e ${g.marker} ]; then echo no verified restore of backup ${g.backupId} on this host: not starting etcd >&2; exit 9; fi`,
    sh`if [ ! -s ${g.dataDir}/member/snap/db ]; then echo ${g.dataDir} holds no database: not starting etcd >&2; exit 9; fi`,
  ];
}

/**
 * What a run that ends with its force-new-cluster step started and not done
 * (its worker killed, the survivor not leading alone in time, a cancel while
 * it was orphaned) puts back: --force-new-cluster taken out of the survivor's
 * config, if it is still there. Left in, the next restart of etcd (a reboot,
 * the kubelet) forces a new cluster again, dropping every member grown back by
 * then. The config is written again only if it is still the one just read
 * (sha256, under the member lock); etcd restarts on it (a one-member cluster
 * already forced stays one; one not yet forced starts as it was).
 */
export async function undoForceNewCluster(ctx: QuorumStepContext, step: StepOf<'force-new-cluster'>): Promise<string | null> {
  const name = param(step, 'name');
  const place = configPlaceOf(step);
  const target = ctx.target(name);
  const byHand = `take --force-new-cluster (ETCD_FORCE_NEW_CLUSTER where it is set as a variable) out of ${place.config} on ${name} by hand; the copy from before the run is ${place.configAside}`;
  try {
    const current = await readConfig(target, place.config);
    if (!current || ctx.platform.flag(current, 'force-new-cluster') === undefined) return null;
    const clean = ctx.platform.withFlags(current, { 'force-new-cluster': null });
    const lock = memberLockOf(step, lockWaitSeconds(ctx.cluster));
    const sha = createHash('sha256').update(Buffer.from(current, 'utf8')).digest('hex');
    const unchanged = sh`if [ "$(sha256sum < ${place.config} | cut -d' ' -f1)" != ${sha} ]; then echo ${place.config} changed since it was read: not written >&2; exit 11; fi`;
    await writeRemote(target, place.config, clean, [unchanged], { lock, after: ctx.platform.startLines(place, 'restart') });
    const final = await readConfig(target, place.config);
    if (ctx.platform.flag(final, 'force-new-cluster') !== undefined) throw new Error(`${place.config} still has the flag after it was written without it`);
    return `--force-new-cluster taken out of ${place.config} on ${name} (${ctx.platform.startText('restart')}): the run left it there, and a later restart of etcd would have forced a new cluster again`;
  } catch (err) {
    return `:x: --force-new-cluster may still be in ${place.config} on ${name} (${(err as Error).message.slice(0, 300)}): ${byHand}, before etcd restarts there`;
  }
}
