import { posix } from 'node:path';

/**
 * The files OpenShift 4's own `cluster-backup.sh <dir>` writes on a master:
 * `static_kuberesources_<ts>.tar.gz` (the latest revision of each control-plane
 * static pod's resources, relative to /etc/kubernetes), then
 * `snapshot_<ts>.db` (`etcdctl snapshot save`), where `<ts>` is
 * `date "+%F_%H%M%S"` on that master: 2020-05-11_080543. 4.3.0 and 4.3.1 wrote
 * both into one `snapshot_db_kuberesources_<ts>.tar.gz`.
 */
const TS = '(\\d{4}-\\d{2}-\\d{2}_\\d{6})';
export const SNAPSHOT_NAME = new RegExp(`^snapshot_${TS}\\.db$`);
export const RESOURCES_NAME = new RegExp(`^static_kuberesources_${TS}\\.tar\\.gz$`);
export const COMBINED_NAME = new RegExp(`^snapshot_db_kuberesources_${TS}\\.tar\\.gz$`);
/** What `etcdctl snapshot save` writes while it runs (renamed to the .db once whole). */
export const UNFINISHED_NAME = new RegExp(`^snapshot_${TS}\\.db\\.part$`);

/**
 * The time a name carries, as an ISO instant, or null when it is not a real
 * time (2020-13-40_250000). The script writes the master's local time; RHCOS
 * masters keep UTC, so it is read as UTC.
 */
export function stampOf(ts: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(ts);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const at = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (at.getUTCFullYear() !== y || at.getUTCMonth() !== mo - 1 || at.getUTCDate() !== d || at.getUTCHours() !== h || at.getUTCMinutes() !== mi || at.getUTCSeconds() !== s) return null;
  return at.toISOString();
}

/** Where to look on the host: a directory, or one of the pair's files (then its directory, and only that timestamp). */
export type ImportSource = { dir: string; ts: string | null };

/**
 * Why a path typed in Slack cannot be read as written (null: it can). The path
 * travels to the host quoted (src/ssh/shell.ts), never read by a shell; this
 * keeps to what cluster-backup.sh paths look like, so that a mistyped or
 * pasted-with-markup path is named rather than looked for.
 */
export function importPathProblem(path: string): string | null {
  if (path.length > 1024) return 'the path is longer than 1024 characters';
  // Messages name the path last: a long one is cut when shown, never what to do.
  if (path.startsWith('~')) return `write the absolute path (nothing expands ~ on the host), e.g. /home/core/assets/backup, not ${path}`;
  if (!path.startsWith('/')) return `not an absolute path (write it from /, e.g. /home/core/assets/backup): ${path}`;
  if (!/^[A-Za-z0-9._+@:,=%/-]+$/.test(path)) return `the path has characters a backup path does not need (letters, digits and . _ - + @ : , = % / only): ${path.slice(0, 200)}`;
  if (path.split('/').some((s) => s === '..' || s === '.')) return `write the path without . or .. segments: ${path}`;
  return null;
}

/** Splits a valid path into the directory to list and, when it names one of the pair's files, the timestamp it asks for. */
export function importSourceOf(path: string): ImportSource | { combined: string } {
  const clean = path.length > 1 ? path.replace(/\/+$/, '') : path;
  const base = posix.basename(clean);
  if (COMBINED_NAME.test(base)) return { combined: base };
  const named = SNAPSHOT_NAME.exec(base) ?? RESOURCES_NAME.exec(base);
  if (named) return { dir: posix.dirname(clean), ts: named[1]! };
  return { dir: clean, ts: null };
}

/** One file of the directory as the host listed it. */
export interface ListedFile {
  name: string;
  bytes: number;
}

export interface ChosenPair {
  ts: string;
  stampedAt: string;
  snapshot: ListedFile;
  /** The tarball of the same timestamp, or null when there is none. */
  resources: ListedFile | null;
  /** The other snapshots in the directory, newest first: what else could have been imported. */
  others: string[];
  /** Snapshots still being written (`.db.part`): never imported. */
  unfinished: string[];
}

/** Why nothing can be imported from a directory, said as an operator acts on it. */
export class NoPairError extends Error {}

/**
 * Picks the pair to import from a directory listing. `ts` (the path named one
 * of the files): that timestamp's. Otherwise the newest snapshot by the time in
 * its name, as OpenShift's own cluster-restore.sh takes the last `snapshot*.db`
 * of the directory; the others are named with how to take one of them instead.
 */
export function choosePair(files: ListedFile[], want: string | null, where: string): ChosenPair {
  const snapshots = files.filter((f) => SNAPSHOT_NAME.test(f.name) && stampOf(SNAPSHOT_NAME.exec(f.name)![1]!) !== null);
  const tsOf = (f: ListedFile) => SNAPSHOT_NAME.exec(f.name)![1]!;
  snapshots.sort((a, b) => tsOf(b).localeCompare(tsOf(a)));
  const unfinished = files.filter((f) => UNFINISHED_NAME.test(f.name)).map((f) => f.name);
  const combined = files.filter((f) => COMBINED_NAME.test(f.name)).map((f) => f.name);
  let snapshot: ListedFile | undefined;
  if (want) {
    snapshot = snapshots.find((f) => tsOf(f) === want);
    if (!snapshot) {
      const still = unfinished.includes(`snapshot_${want}.db.part`) ? ` (snapshot_${want}.db.part is there: cluster-backup.sh is still writing it, or died while it did)` : '';
      throw new NoPairError(`there is no snapshot_${want}.db in ${where}${still}${snapshots.length ? `; it holds ${snapshots.map((f) => f.name).join(', ')}` : ''}`);
    }
  } else {
    snapshot = snapshots[0];
    if (!snapshot) {
      const hint = combined.length
        ? ` It holds ${combined.join(', ')}: OpenShift 4.3.0/4.3.1's single-file backup, which is not imported as it is. Unpack it into a directory of its own on the host (\`tar xzf\`) and import that directory.`
        : unfinished.length
          ? ` It holds ${unfinished.join(', ')}: a snapshot cluster-backup.sh is still writing, or died while it did.`
          : ' cluster-backup.sh writes snapshot_<YYYY-MM-DD_HHMMSS>.db and static_kuberesources_<same>.tar.gz into the directory it was given (e.g. /home/core/assets/backup).';
      throw new NoPairError(`no snapshot_<YYYY-MM-DD_HHMMSS>.db in ${where}.${hint}`);
    }
  }
  const ts = tsOf(snapshot);
  const resources = files.find((f) => f.name === `static_kuberesources_${ts}.tar.gz`) ?? null;
  return { ts, stampedAt: stampOf(ts)!, snapshot, resources, others: snapshots.filter((f) => f !== snapshot).map((f) => f.name), unfinished };
}
