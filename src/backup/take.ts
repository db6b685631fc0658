import { chmodSync, createWriteStream, existsSync, rmSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Writable } from 'node:stream';
import type { Etcd3 } from 'etcd3';
import { snapshotStatus } from '../etcd/etcdctl.js';
import { sshExec, type SshTarget } from '../ssh/exec.js';
import { quote } from '../ssh/shell.js';
import { describeStreamError, streamSnapshot, type SnapshotStreamOptions } from './snapshot-stream.js';
import type { BackupFacts, BackupStore } from './store.js';
import { verifySnapshotFile } from './trailer.js';

export { streamSnapshot, verifySnapshotFile };

/**
 * maintenance.hashKV: the hash of the MVCC keys up to `revision`. etcd3 1.1.2's
 * own hashKV() names the gRPC method wrongly ("client[method] is not a function"),
 * so the call goes by the name the gRPC loader gives it.
 */
export async function hashKvAt(client: Etcd3, revision: number): Promise<number> {
  const m = client.maintenance as unknown as { client: { exec(service: string, method: string, req: unknown): Promise<{ hash: number | string }> } };
  return Number((await m.client.exec('Maintenance', 'hashKv', { revision })).hash);
}

/** Integrity (sha256 trailer) and contents (revision, keys, hash read offline by etcdctl). */
export async function verifySnapshot(file: string, signal?: AbortSignal): Promise<{ bytes: number; sha256: string; revision: number; totalKeys: number; hash: number }> {
  const integrity = await verifySnapshotFile(file, signal);
  const status = await snapshotStatus(file, 60_000, signal);
  return { ...integrity, revision: status.revision, totalKeys: status.totalKey, hash: status.hash };
}

/** A backup about to be trusted for a restore: the file must still be what was recorded. */
export async function reverifyBackup(store: BackupStore, facts: BackupFacts): Promise<void> {
  const file = store.snapshotPath(facts);
  if (!existsSync(file)) throw new Error(`backup ${facts.id}: ${facts.snapshotFile} is missing from the store`);
  const v = await verifySnapshot(file);
  if (v.sha256 !== facts.sha256 || v.revision !== facts.revision || v.totalKeys !== facts.totalKeys) {
    throw new Error(`backup ${facts.id} changed since it was taken (sha256 ${v.sha256.slice(0, 12)} vs ${facts.sha256.slice(0, 12)}, revision ${v.revision} vs ${facts.revision})`);
  }
}

export interface TakeBackup {
  cluster: string;
  id: string;
  takenBy: string;
  fromMember: string;
  client: Etcd3;
  /** The member's host and the files to archive from it (its etcd config and certificates); null to skip it. */
  host: { target: SshTarget; paths: string[] } | null;
  /** A stop request of the run, and the snapshot stream's watchdog. */
  stream?: Pick<SnapshotStreamOptions, 'signal' | 'stallMs'>;
}

/** Snapshot through the API, verified, plus the host files needed to rebuild a member, committed to the store. */
export async function takeBackup(store: BackupStore, t: TakeBackup, now = () => new Date()): Promise<BackupFacts> {
  const paths = store.reserve(t.cluster, t.id);
  const { bytes } = await streamSnapshot(t.client, paths.snapshot, { ...t.stream, from: t.fromMember });
  let v;
  try {
    v = await verifySnapshot(paths.snapshot, t.stream?.signal);
    if (v.bytes !== bytes) throw new Error(`snapshot is ${v.bytes} bytes on disk but ${bytes} were received`);
  } catch (err) {
    rmSync(paths.snapshot, { force: true });
    throw err;
  }
  // The KV hash at the snapshot's revision, for a restore to compare with; a member that compacted past it has none.
  const hashKv = await hashKvAt(t.client, v.revision).catch(() => undefined);

  let resourcesFile: string | null = null;
  let note: string | undefined;
  if (t.host) {
    try {
      await archiveHostFiles(t.host, paths.resources);
      resourcesFile = basename(paths.resources);
    } catch (err) {
      rmSync(paths.resources, { force: true });
      note = `host files not archived: ${(err as Error).message}`;
    }
  }
  const facts: BackupFacts = {
    id: t.id,
    cluster: t.cluster,
    takenAt: now().toISOString(),
    takenBy: t.takenBy,
    fromMember: t.fromMember,
    snapshotFile: basename(paths.snapshot),
    resourcesFile,
    bytes: v.bytes,
    sha256: v.sha256,
    revision: v.revision,
    totalKeys: v.totalKeys,
    hash: v.hash,
    ...(hashKv === undefined ? {} : { hashKv }),
    note,
  };
  await store.commit(facts);
  return facts;
}

/**
 * The host's etcd config and certificates as a tar.gz, streamed over SSH into `file`.
 * A failing disk does not stall the remote tar nor escape as a stream error:
 * what cannot be written is dropped and the failure reported once tar ends.
 */
async function archiveHostFiles(host: NonNullable<TakeBackup['host']>, file: string): Promise<void> {
  const out = createWriteStream(file, { mode: 0o600 });
  let writeError: Error | null = null;
  out.on('error', (err) => (writeError ??= err));
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (writeError || out.destroyed) return cb();
      if (out.write(chunk)) cb();
      else out.once('drain', () => cb()).once('error', () => cb());
    },
  });
  try {
    const r = await sshExec(host.target, `tar czf - ${host.paths.map((p) => quote(p)).join(' ')}`, { stdoutTo: sink, commandTimeoutMs: 120_000 });
    if (!writeError) await new Promise<void>((resolve) => out.end(() => resolve()));
    if (writeError) throw new Error(describeStreamError(writeError, file));
    if (r.code !== 0) throw new Error(`tar exited ${r.code ?? `on signal ${r.signal}`}: ${r.stderr.trim().split('\n').pop()}`);
    if (statSync(file).size === 0) throw new Error('the archive is empty');
    chmodSync(file, 0o600);
  } finally {
    out.destroy();
  }
}

export interface RetentionOutcome {
  removed: string[];
  /** Backups past `keep` that stayed, and why (an unfinished run uses them, or that could not be checked). */
  kept: { id: string; why: string }[];
}

/**
 * Keeps the newest `keep` backups of a cluster, and never one that an
 * unfinished run names (a restore about to use it). When the runs cannot be
 * read, nothing is pruned: a backup too many is cheaper than the one a
 * restore needed.
 */
export async function applyRetention(store: BackupStore, cluster: string, keep: number): Promise<RetentionOutcome> {
  // An imported backup was brought in on purpose (often for one restore) and cannot be taken again: retention
  // neither counts nor removes it; it goes when someone removes its files from the store.
  const all = (await store.list(cluster)).filter((f) => f.source !== 'imported');
  const old = all.slice(keep);
  if (old.length === 0) return { removed: [], kept: [] };
  let inUse: Map<string, string>;
  try {
    inUse = (await store.inUse?.(cluster)) ?? new Map();
  } catch (err) {
    return { removed: [], kept: old.map((f) => ({ id: f.id, why: `could not check which runs use it (${(err as Error).message}), so nothing was pruned` })) };
  }
  const removed: string[] = [];
  const kept: RetentionOutcome['kept'] = [];
  for (const f of old) {
    const why = inUse.get(f.id);
    if (why) kept.push({ id: f.id, why });
    else {
      await store.remove(cluster, f.id);
      removed.push(f.id);
    }
  }
  return { removed, kept };
}
