import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { snapshotStatus } from '../etcd/etcdctl.js';
import { killAtFault } from '../fault.js';
import { sshExec, type SshTarget } from '../ssh/exec.js';
import { sh } from '../ssh/shell.js';
import type { BackupFacts, BackupStore } from './store.js';

/** etcd appends the sha256 of the database to a snapshot; a file whose tail does not match is damaged. */
export function verifySnapshotFile(file: string): { bytes: number; sha256: string } {
  const buf = readFileSync(file);
  if (buf.length < 33) throw new Error(`${basename(file)} is ${buf.length} bytes: not a snapshot`);
  const body = buf.subarray(0, buf.length - 32);
  const sum = createHash('sha256').update(body).digest();
  if (!sum.equals(buf.subarray(buf.length - 32))) throw new Error(`${basename(file)}: its sha256 trailer does not match its contents (truncated or corrupted)`);
  return { bytes: buf.length, sha256: sum.toString('hex') };
}

/** Streams a snapshot from one member to a file; the file appears only once complete. */
export async function streamSnapshot(client: Etcd3, file: string): Promise<{ bytes: number; revisionBefore: number }> {
  // etcd 3.4 leaves the snapshot stream's header empty: the revision is read just before.
  const revisionBefore = Number((await client.maintenance.status()).header.revision);
  const tmp = `${file}.partial`;
  const stream = await client.maintenance.snapshot();
  const fd = openSync(tmp, 'w', 0o600);
  let bytes = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: { blob: Buffer }) => {
        writeSync(fd, chunk.blob);
        bytes += chunk.blob.length;
        killAtFault('mid-snapshot'); // tests only
      });
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
  return { bytes, revisionBefore };
}

/** Integrity (sha256 trailer) and contents (revision, keys, hash read offline by etcdctl). */
export async function verifySnapshot(file: string): Promise<{ bytes: number; sha256: string; revision: number; totalKeys: number; hash: number }> {
  const integrity = verifySnapshotFile(file);
  const status = await snapshotStatus(file);
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
  /** The member's host, for the manifest and pki archive; null to skip it. */
  host: { target: SshTarget; manifest: string; pkiDir: string } | null;
}

/** Snapshot through the API, verified, plus the host files needed to rebuild a member, committed to the store. */
export async function takeBackup(store: BackupStore, t: TakeBackup, now = () => new Date()): Promise<BackupFacts> {
  const paths = store.reserve(t.cluster, t.id);
  const { bytes } = await streamSnapshot(t.client, paths.snapshot);
  let v;
  try {
    v = await verifySnapshot(paths.snapshot);
  } catch (err) {
    rmSync(paths.snapshot, { force: true });
    throw err;
  }
  if (v.bytes !== bytes) throw new Error(`snapshot is ${v.bytes} bytes on disk but ${bytes} were received`);

  let resourcesFile: string | null = null;
  let note: string | undefined;
  if (t.host) {
    try {
      const out = createWriteStream(paths.resources, { mode: 0o600 });
      const r = await sshExec(t.host.target, sh`tar czf - ${t.host.manifest} ${t.host.pkiDir}`, { stdoutTo: out, commandTimeoutMs: 120_000 });
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      if (r.code !== 0) throw new Error(`tar exited ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
      if (statSync(paths.resources).size === 0) throw new Error('the archive is empty');
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
    note,
  };
  await store.commit(facts);
  return facts;
}

/** Keeps the newest `keep` backups of a cluster; returns the IDs removed. */
export async function applyRetention(store: BackupStore, cluster: string, keep: number): Promise<string[]> {
  const all = await store.list(cluster);
  const old = all.slice(keep);
  for (const f of old) await store.remove(cluster, f.id);
  return old.map((f) => f.id);
}
