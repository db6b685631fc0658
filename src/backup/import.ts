import { chmodSync, createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { basename, posix } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { sshExec, type SshTarget } from '../ssh/exec.js';
import { quoteScript, sh } from '../ssh/shell.js';
import { formatBytes } from '../status/assess.js';
import { choosePair, importPathProblem, importSourceOf, NoPairError, type ChosenPair, type ListedFile } from './openshift-names.js';
import { describeStreamError, stopReason } from './snapshot-stream.js';
import { writingPartial, type BackupFacts, type BackupStore } from './store.js';
import { TarTops } from './tar-listing.js';
import { verifySnapshot } from './take.js';

/** An import refused for what the operator gave or what the host holds: the message says what to do; nothing was stored. */
export class ImportRefused extends Error {}

export interface ImportBackup {
  cluster: string;
  member: string;
  target: SshTarget;
  /** The directory cluster-backup.sh wrote into, or one of the pair's files, on the member's host. */
  path: string;
  importedBy: string;
  /** No byte from the host for this long fails the import (a hung disk or connection). */
  stallMs: number;
  signal?: AbortSignal;
}

export interface ImportOutcome {
  facts: BackupFacts;
  chosen: ChosenPair;
  /** The same snapshot was already in the store (imported or taken before): nothing new was kept. */
  already: boolean;
  /** The directory listed on the host. */
  dir: string;
}

/**
 * Reads a backup OpenShift's cluster-backup.sh wrote on a master into the
 * store: the snapshot streamed over SSH (flat memory) to a `.partial` file,
 * verified as the store verifies its own (sha256 trailer, then etcdctl snapshot
 * status for revision, keys and hash), the static_kuberesources tarball beside
 * it checked (gzip and tar intact) and listed, then both renamed and the facts
 * committed. The host is only read (a listing, then `cat`). A snapshot that
 * does not verify is refused and nothing is kept; a missing or damaged tarball
 * does not stop the snapshot, whose facts then say so.
 */
export async function importBackup(store: BackupStore, i: ImportBackup, now = () => new Date()): Promise<ImportOutcome> {
  const problem = importPathProblem(i.path);
  if (problem) throw new ImportRefused(problem);
  const source = importSourceOf(i.path);
  if ('combined' in source) {
    throw new ImportRefused(`${source.combined} is OpenShift 4.3.0/4.3.1's single-file backup, which is not imported as it is. Unpack it into a directory of its own on the host (\`tar xzf\`) and import that directory`);
  }
  const where = `${i.member}:${source.dir}`;
  const files = await listBackupDir(i.target, source.dir, i.member, i.signal);
  let chosen: ChosenPair;
  try {
    chosen = choosePair(files, source.ts, where);
  } catch (err) {
    if (err instanceof NoPairError) throw new ImportRefused(err.message);
    throw err;
  }

  // The backup keeps the name's timestamp as its ID, unless the store has that ID already.
  let id = chosen.ts;
  for (let n = 2; await store.get(i.cluster, id); n++) id = `${chosen.ts}-${n}`;
  const paths = store.reserve(i.cluster, id);
  const snapPartial = `${paths.snapshot}.partial`;
  const resPartial = `${paths.resources}.partial`;
  const inFlight = [writingPartial(snapPartial), writingPartial(resPartial)];
  try {
    const remoteSnap = posix.join(source.dir, chosen.snapshot.name);
    const got = await readRemoteFile(i.target, remoteSnap, snapPartial, { stallMs: i.stallMs, signal: i.signal, what: `${chosen.snapshot.name} from ${i.member}` });
    let v;
    try {
      if (got !== chosen.snapshot.bytes) throw new Error(`${got} bytes arrived but the host listed ${chosen.snapshot.bytes} (is something still writing it?)`);
      v = await verifySnapshot(snapPartial, i.signal);
    } catch (err) {
      rmSync(snapPartial, { force: true });
      // The messages name the store's .partial file; the operator knows the file by its name on the host.
      const msg = (err as Error).message.replace(`${basename(snapPartial)}: `, '').replace(snapPartial, chosen.snapshot.name).replace(basename(snapPartial), chosen.snapshot.name);
      throw new ImportRefused(`${chosen.snapshot.name} in ${where} is not a whole etcd snapshot: ${msg}. Nothing was imported; take a new backup on the master (cluster-backup.sh) or import another one`);
    }

    // Imported (or taken) before: the store has this very snapshot already.
    const same = (await store.list(i.cluster)).find((f) => f.sha256 === v.sha256 && f.bytes === v.bytes);
    if (same) {
      rmSync(snapPartial, { force: true });
      return { facts: same, chosen, already: true, dir: source.dir };
    }

    let resourcesFile: string | null = null;
    let resourceDirs: string[] = [];
    let note: string | undefined;
    if (chosen.resources) {
      try {
        const remoteRes = posix.join(source.dir, chosen.resources.name);
        const n = await readRemoteFile(i.target, remoteRes, resPartial, { stallMs: i.stallMs, signal: i.signal, what: `${chosen.resources.name} from ${i.member}` });
        if (n !== chosen.resources.bytes) throw new Error(`${n} bytes arrived but the host listed ${chosen.resources.bytes}`);
        resourceDirs = await listTarball(resPartial);
        renameSync(resPartial, paths.resources);
        resourcesFile = basename(paths.resources);
      } catch (err) {
        rmSync(resPartial, { force: true });
        // A stop request stops the whole import.
        if (i.signal?.aborted) throw err;
        note = `${chosen.resources.name} was not kept: ${(err as Error).message}. The snapshot was imported without it`;
      }
    } else {
      note = `no static_kuberesources_${chosen.ts}.tar.gz beside the snapshot in ${where}: the snapshot was imported alone (etcd restores from it; OpenShift's cluster-restore.sh would also want the static pod resources of that time)`;
    }
    renameSync(snapPartial, paths.snapshot);
    const facts: BackupFacts = {
      id,
      cluster: i.cluster,
      takenAt: chosen.stampedAt,
      takenBy: i.importedBy,
      fromMember: i.member,
      snapshotFile: basename(paths.snapshot),
      resourcesFile,
      bytes: v.bytes,
      sha256: v.sha256,
      revision: v.revision,
      totalKeys: v.totalKeys,
      hash: v.hash,
      note,
      source: 'imported',
      imported: {
        member: i.member,
        host: i.target.host,
        dir: source.dir,
        snapshotFile: chosen.snapshot.name,
        resourcesFile: chosen.resources?.name ?? null,
        stampedAt: chosen.stampedAt,
        importedAt: now().toISOString(),
        resourceDirs,
      },
    };
    await store.commit(facts);
    return { facts, chosen, already: false, dir: source.dir };
  } finally {
    rmSync(snapPartial, { force: true });
    rmSync(resPartial, { force: true });
    for (const f of inFlight) f.done();
  }
}

/**
 * Lists the pair's candidates in a directory on the host, read only: the names
 * and sizes of regular files named snapshot_* or static_kuberesources_*. A
 * directory that is missing, not a directory or not readable by the SSH user
 * is refused, naming it.
 */
async function listBackupDir(target: SshTarget, dir: string, member: string, signal?: AbortSignal): Promise<ListedFile[]> {
  const script = [
    'set -uo pipefail',
    sh`d=${dir}`,
    'if [ ! -e "$d" ]; then echo "medic:missing"; exit 0; fi',
    'if [ ! -d "$d" ]; then echo "medic:notdir"; exit 0; fi',
    'if ! cd -- "$d" 2>/dev/null || [ ! -r . ]; then echo "medic:unreadable"; exit 0; fi',
    'shopt -s nullglob',
    'for f in snapshot_* static_kuberesources_*; do',
    '  if [ -f "$f" ]; then',
    '    if [ -r "$f" ]; then r=r; else r=-; fi',
    '    printf "file\\t%s\\t%s\\t%s\\n" "$(stat -c %s -- "$f")" "$r" "$f"',
    '  fi',
    'done',
  ].join('\n');
  const r = await sshExec(target, `bash -c ${quoteScript(script)}`, { commandTimeoutMs: 30_000, signal });
  if (r.code !== 0) throw new Error(`listing ${dir} on ${member} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  const first = r.stdout.split('\n')[0] ?? '';
  const who = `${target.user}@${member}`;
  if (first === 'medic:missing') throw new ImportRefused(`${dir} does not exist on ${member} (${target.host}). Give the directory cluster-backup.sh wrote into (e.g. /home/core/assets/backup) or the path of its snapshot_<ts>.db`);
  if (first === 'medic:notdir') throw new ImportRefused(`${dir} on ${member} is a file, not named snapshot_<YYYY-MM-DD_HHMMSS>.db: give the directory cluster-backup.sh wrote into, or its snapshot_<ts>.db`);
  if (first === 'medic:unreadable') throw new ImportRefused(`${who} cannot read the directory ${dir} (cluster-backup.sh runs as root): let the inventory's SSH user read it`);
  const files: ListedFile[] = [];
  const unreadable: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^file\t(\d+)\t([r-])\t(.+)$/.exec(line);
    if (!m) continue;
    if (m[2] === '-') unreadable.push(m[3]!);
    else files.push({ name: m[3]!, bytes: Number(m[1]) });
  }
  // A snapshot the SSH user cannot read is not a candidate, but the refusal must say why it was not taken.
  if (unreadable.some((f) => /^snapshot_.+\.db$/.test(f)) && !files.some((f) => /^snapshot_.+\.db$/.test(f.name))) {
    throw new ImportRefused(`${who} cannot read ${unreadable.join(', ')} in ${dir} (cluster-backup.sh writes the snapshot 0600 as root): let the inventory's SSH user read it`);
  }
  return files;
}

/**
 * Streams one file from the host (`cat`) into `dest`, memory flat (the SSH
 * channel pauses while the disk catches up). No byte for `stallMs` fails it.
 * Returns the bytes written.
 */
async function readRemoteFile(target: SshTarget, path: string, dest: string, o: { stallMs: number; signal?: AbortSignal; what: string }): Promise<number> {
  if (o.signal?.aborted) throw new Error(`${o.what} not read: ${stopReason(o.signal)}`);
  const out = createWriteStream(dest, { mode: 0o600 });
  let writeError: Error | null = null;
  out.on('error', (err) => (writeError ??= err));
  const stalled = new AbortController();
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stalled.abort(new Error(`no data for ${o.stallMs / 1000} s after ${formatBytes(bytes)} (a hung disk or connection on the host)`)), o.stallMs);
  };
  const signal = o.signal ? AbortSignal.any([o.signal, stalled.signal]) : stalled.signal;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      arm();
      if (writeError || out.destroyed) return cb();
      if (out.write(chunk)) cb();
      else out.once('drain', () => cb()).once('error', () => cb());
    },
  });
  arm();
  try {
    const r = await sshExec(target, sh`cat -- ${path}`, { stdoutTo: sink, commandTimeoutMs: 4 * 3600_000, signal }).catch((err: Error) => {
      throw new Error(stalled.signal.aborted ? `reading ${o.what} failed: ${stopReason(stalled.signal)}` : `reading ${o.what} failed: ${err.message}`);
    });
    if (!writeError) await new Promise<void>((resolve) => out.end(() => resolve()));
    if (writeError) throw new Error(describeStreamError(writeError, dest));
    if (r.code !== 0) throw new Error(`reading ${o.what} failed: cat exited ${r.code ?? `on signal ${r.signal}`}: ${r.stderr.trim().split('\n').pop()}`);
    chmodSync(dest, 0o600);
    return bytes;
  } catch (err) {
    rmSync(dest, { force: true });
    throw err;
  } finally {
    clearTimeout(timer);
    out.destroy();
  }
}

/** The static_kuberesources tarball read back from disk: gzip intact (its CRC and length), tar intact, and what it holds. */
async function listTarball(file: string): Promise<string[]> {
  const tops = new TarTops();
  try {
    await pipeline(createReadStream(file), createGunzip(), tops);
    tops.check();
  } catch (err) {
    throw new Error(`it is not a whole tar.gz (${(err as Error).message})`);
  }
  return [...tops.tops].sort();
}
