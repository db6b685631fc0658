import { dirname } from 'node:path';
import { sh } from '../../ssh/shell.js';

/**
 * One host-side lock per member, taken by every script that changes the
 * member's host (moves a manifest or a data dir, writes a manifest, restores a
 * snapshot, moves kube-apiserver's manifest). Two executions of one step (a
 * worker whose run lease lapsed while its script still ran, and the worker that
 * took the step over) then never act on a host at once: the second waits for
 * the first script to end and, since every script looks before it acts, finds
 * the work done and does nothing twice.
 *
 * It lives in the member's aside dir (`<dir of the manifests dir>/etcd-medic-aside`):
 * every step that changes the host knows that dir (directly, or as the dir of
 * the manifest's aside copy); it depends only on the member's paths in the
 * inventory, not on the run, so two runs and two executions name the same file;
 * it is not in the kubelet's manifests dir (which reads every file there) and
 * not beside the data dir (which is what moves).
 */
export interface MemberLock {
  path: string;
  /** How long a script waits for another to release the lock before it fails, doing nothing. */
  waitSeconds: number;
}

export function memberLockPath(asideDir: string): string {
  return `${asideDir.replace(/\/+$/, '')}/member.lock`;
}

/** The member's aside dir from a step's parameters (older replace plans name only the manifest's aside copy). */
export function asideDirOf(params: Record<string, unknown>): string {
  if (typeof params.asideDir === 'string' && params.asideDir) return params.asideDir;
  if (typeof params.configAside === 'string' && params.configAside) return dirname(params.configAside);
  // Plans made before platforms (kubeadm only).
  if (typeof params.manifestAside === 'string' && params.manifestAside) return dirname(params.manifestAside);
  throw new Error('the step names no aside dir for its member (asideDir or configAside): no lock to take on the host');
}

/** Exit status of a script that gave up waiting for the member lock (EX_TEMPFAIL). */
export const LOCK_BUSY_EXIT = 75;

/**
 * Lines that take the member lock (fd 8, held until the script and whatever it
 * started end), waiting at most `waitSeconds`; the wait is said in the output.
 */
export function memberLockLines(lock: MemberLock): string[] {
  const busy = `another execution of a step on this member is still running on this host (it holds the lock ${lock.path}), ${lock.waitSeconds} s after this one started waiting: nothing was done by this one`;
  return [
    'command -v flock >/dev/null 2>&1 || { echo "flock is not on the PATH of this host: the member lock cannot be taken, nothing was done" >&2; exit 127; }',
    sh`mkdir -p ${dirname(lock.path)}`,
    sh`exec 8>>${lock.path}`,
    'if ! flock -n 8; then',
    sh`  echo another execution of a step on this member holds ${lock.path}: waiting up to ${lock.waitSeconds} s for it to finish`,
    '  medic_t0=$SECONDS',
    sh`  flock -w ${lock.waitSeconds} 8 || { echo ${busy} >&2; exit ${LOCK_BUSY_EXIT}; }`,
    '  echo "the other execution finished after $((SECONDS - medic_t0)) s: looking again before acting"',
    'fi',
  ];
}

/** A script that runs whole under the member lock. */
export function underMemberLock(lock: MemberLock, script: string): string {
  return ['set -euo pipefail', ...memberLockLines(lock), script].join('\n');
}
