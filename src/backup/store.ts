import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a backup is known to contain, checked when it was taken. */
export interface BackupFacts {
  id: string; // 2026-11-23_031500, as OpenShift names its backups
  cluster: string;
  takenAt: string;
  takenBy: string; // a Slack user ID, or "schedule"
  fromMember: string;
  snapshotFile: string; // snapshot_<id>.db
  resourcesFile: string | null; // static_kuberesources_<id>.tar.gz, null when the host could not be reached
  bytes: number;
  sha256: string;
  revision: number;
  totalKeys: number;
  hash: number; // the database hash etcdctl snapshot status prints
  hashKv?: number; // maintenance.hashKV at `revision` on the member the snapshot came from: a restore must give the same
  note?: string;
  /** How it came into the store: taken by the bot (also when absent, as in facts written before imports), or imported. */
  source?: 'taken' | 'imported';
  /** Where an imported backup was read from (`source: 'imported'`). */
  imported?: ImportedFrom;
}

/**
 * A backup OpenShift's own cluster-backup.sh wrote on a master, read from
 * there into the store (src/backup/import.ts). Its `takenAt` is the time in
 * its file names; `takenBy` is who imported it.
 */
export interface ImportedFrom {
  member: string;
  host: string;
  /** The directory on the host, and the files' names there. */
  dir: string;
  snapshotFile: string;
  resourcesFile: string | null;
  /** The `<ts>` of the names (the master's clock, read as UTC), as an ISO instant. */
  stampedAt: string;
  importedAt: string;
  /** What the static_kuberesources archive holds, two levels deep (static-pod-resources/kube-apiserver-pod-7, …). */
  resourceDirs: string[];
}

/**
 * Where backups live. A directory by default; the interface is what an object
 * store would implement too: files are written to local paths first, then
 * committed with their facts.
 */
export interface BackupStore {
  /** Local paths to write a new backup's files into (the snapshot and the host-files archive). */
  reserve(cluster: string, id: string): { snapshot: string; resources: string };
  commit(facts: BackupFacts): Promise<void>;
  list(cluster: string): Promise<BackupFacts[]>; // newest first
  get(cluster: string, id: string): Promise<BackupFacts | null>;
  /** A local path of the snapshot file to read from. */
  snapshotPath(facts: BackupFacts): string;
  remove(cluster: string, id: string): Promise<void>;
  /**
   * Backups that retention must not prune, each with why (the unfinished run
   * that names it). Throws when it cannot tell: retention then prunes nothing.
   */
  inUse?(cluster: string): Promise<Map<string, string>>;
  /** Removes the snapshot files of backups that were cut off while streaming (see DirectoryBackupStore). */
  sweepPartials?(cluster: string, olderThanMs: number, now?: Date): Promise<StalePartial[]>;
}

/** A `snapshot_<id>.db.partial` a backup left when it was cut off (a killed worker, a power cut): never a backup. */
export interface StalePartial {
  cluster: string;
  file: string;
  bytes: number;
  modifiedAt: string;
}

/** The name a snapshot (or an imported archive) has while it is streamed (snapshot-stream.ts, import.ts rename it once whole). */
export const PARTIAL_FILE = /^(snapshot_.+\.db|static_kuberesources_.+\.tar\.gz)\.partial$/;

/**
 * How old a partial file must be before it counts as left behind. A live stream
 * writes to it at least once per stall window (a member that sends nothing for
 * that long fails the backup, which removes its own file), at most minutes: an
 * hour leaves a wide margin, also for the clocks of workers sharing one store.
 */
export const PARTIAL_STALE_MS = 60 * 60_000;

// Partial files this process is writing now: never swept, whatever their age.
const writing = new Set<string>();

/** Marks a partial file as being written by this process until `done` is called (snapshot-stream.ts). */
export function writingPartial(path: string): { done(): void } {
  writing.add(path);
  return { done: () => void writing.delete(path) };
}

/** Who tells the store which backups are in use (the worker asks its runs). */
export type BackupsInUse = (cluster: string) => Promise<Map<string, string>>;

export const BACKUP_ID = /^\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?$/;

/** The OpenShift-style timestamp: 2026-11-23_031500 (UTC). */
export function backupId(at: Date): string {
  return at.toISOString().replace('T', '_').replace(/:/g, '').replace(/\..*$/, '');
}

/**
 * Backups hold the whole key space (secrets included) and the host's pki: the
 * files are 0600 and their directory 0700, whatever the umask or a directory
 * left by an older version.
 */
export class DirectoryBackupStore implements BackupStore {
  constructor(
    private readonly root: string,
    private readonly opts: { inUse?: BackupsInUse } = {},
  ) {}

  inUse(cluster: string): Promise<Map<string, string>> {
    return this.opts.inUse ? this.opts.inUse(cluster) : Promise.resolve(new Map());
  }

  private dir(cluster: string): string {
    return join(this.root, cluster);
  }

  reserve(cluster: string, id: string) {
    const d = this.dir(cluster);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(d, 0o700);
    return { snapshot: join(d, `snapshot_${id}.db`), resources: join(d, `static_kuberesources_${id}.tar.gz`) };
  }

  async commit(facts: BackupFacts): Promise<void> {
    const file = join(this.dir(facts.cluster), `backup_${facts.id}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(facts, null, 2), { mode: 0o600 });
    chmodSync(`${file}.tmp`, 0o600);
    renameSync(`${file}.tmp`, file);
  }

  async list(cluster: string): Promise<BackupFacts[]> {
    const d = this.dir(cluster);
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .filter((f) => /^backup_.+\.json$/.test(f))
      .map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as BackupFacts)
      .sort((a, b) => b.takenAt.localeCompare(a.takenAt) || b.id.localeCompare(a.id));
  }

  async get(cluster: string, id: string): Promise<BackupFacts | null> {
    if (!BACKUP_ID.test(id)) return null;
    const file = join(this.dir(cluster), `backup_${id}.json`);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as BackupFacts) : null;
  }

  snapshotPath(facts: BackupFacts): string {
    return join(this.dir(facts.cluster), facts.snapshotFile);
  }

  /**
   * Removes `.partial` snapshot files of `cluster` last written more than
   * `olderThanMs` ago and not being written by this process. Another worker
   * sharing the store that is streaming one writes to it continuously, so its
   * file is never that old (see PARTIAL_STALE_MS). Returns what was removed.
   */
  async sweepPartials(cluster: string, olderThanMs: number, now = new Date()): Promise<StalePartial[]> {
    const d = this.dir(cluster);
    if (!existsSync(d)) return [];
    const removed: StalePartial[] = [];
    for (const file of readdirSync(d).filter((f) => PARTIAL_FILE.test(f))) {
      const path = join(d, file);
      if (writing.has(path)) continue;
      let st;
      try {
        st = statSync(path);
      } catch {
        continue; // removed meanwhile (its backup failed and cleaned up, or another worker swept it)
      }
      if (!st.isFile() || now.getTime() - st.mtimeMs < olderThanMs) continue;
      rmSync(path, { force: true });
      removed.push({ cluster, file, bytes: st.size, modifiedAt: st.mtime.toISOString() });
    }
    return removed;
  }

  async remove(cluster: string, id: string): Promise<void> {
    const f = await this.get(cluster, id);
    if (!f) return;
    const d = this.dir(cluster);
    rmSync(join(d, `backup_${id}.json`), { force: true });
    rmSync(join(d, f.snapshotFile), { force: true });
    if (f.resourcesFile) rmSync(join(d, f.resourcesFile), { force: true });
  }
}
