/**
 * The commands host scripts run, beside bash builtins, in groups the step
 * definitions put together: one place to keep in step with the scripts (the
 * readiness check asks each host for them before a run starts).
 */

/** `etcdctl snapshot restore|status`: etcd 3.6 moved them to etcdutl, so the version matters. */
export const SNAPSHOT_TOOL = 'etcdctl';

/** "Is etcd still running there?" (src/worker/etcd-alive.ts): connects bounded by timeout, listen URLs read from configs, data dirs resolved. */
export const ALIVE = ['timeout', 'grep', 'sed', 'tr', 'cat', 'readlink'];
/** Files written and read whole, checked by size and sha256 (checkedWriteScript / checkedReadScript). */
export const CHECKED_IO = ['cat', 'wc', 'sha256sum', 'cut', 'mv', 'rm'];
/** Every script that changes a host: the member lock (src/worker/steps/member-lock.ts) and the session watcher (src/ssh/session-watch.ts). */
export const LOCKED = ['bash', 'mkdir', 'flock', 'sleep'];
/** Stopping a member and moving its data dir aside (moveAsideScript). */
export const MOVE_ASIDE = [...LOCKED, 'mv', 'seq', ...ALIVE];
/** A file read whole from another host (checkedReadScript), where the step changes nothing. */
export const CHECKED_READ = ['bash', 'cat', 'wc', 'sha256sum', 'cut'];

export const uniq = (xs: string[]) => [...new Set(xs)];
