import { killAtFault } from '../fault.js';
import { chmodSync, createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Etcd3 } from 'etcd3';
import { formatBytes } from '../status/assess.js';
import { writingPartial } from './store.js';

export interface SnapshotStreamOptions {
  /** Fires when the run asks to stop: the stream is cut and the partial file removed. */
  signal?: AbortSignal;
  /** No byte from the member for this long fails the snapshot (a frozen member keeps its TCP connection open). */
  stallMs?: number;
  /** The member asked, for messages. */
  from?: string;
}

export const DEFAULT_STALL_MS = 15_000;

/** How much of a snapshot may be held in memory on its way to the disk (each of the two stages). */
const BUFFER_BYTES = 4 * 1024 * 1024;

/** Why a signal fired, as a person reads it. */
export function stopReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : typeof r === 'string' ? r : 'stop requested';
}

/** Turns a stream failure into what an operator acts on. */
export function describeStreamError(err: unknown, file: string): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOSPC') return `no space left on the device holding ${file}`;
  if (e.code === 'EDQUOT') return `the disk quota is used up on the device holding ${file}`;
  if (e.code === 'EACCES' || e.code === 'EPERM') return `cannot write ${file} (${e.code})`;
  return e.message ?? String(err);
}

/**
 * Streams a snapshot from one member to `file`. The bytes go to `<file>.partial`
 * through one pipeline with backpressure (memory stays flat), and the file
 * appears under its name only once complete. Any failure (the disk full, the
 * member frozen, a stop request) removes the partial file and rejects with a
 * message; no error escapes as an unhandled stream event.
 */
export async function streamSnapshot(client: Etcd3, file: string, opts: SnapshotStreamOptions = {}): Promise<{ bytes: number; revisionBefore: number }> {
  const { signal, stallMs = DEFAULT_STALL_MS, from = 'the member' } = opts;
  if (signal?.aborted) throw new Error(`snapshot not started: ${stopReason(signal)}`);
  // etcd 3.4 leaves the snapshot stream's header empty: the revision is read just before (a unary call, with its deadline).
  const revisionBefore = Number((await client.maintenance.status()).header.revision);
  const tmp = `${file}.partial`;
  // grpc-js hands back a Readable (object mode, one { blob } per message) that can also cancel the call.
  const source = (await client.maintenance.snapshot()) as unknown as Readable & { cancel?: () => void };
  let bytes = 0;
  // A progress watchdog rather than one deadline: a big database may take minutes, a frozen one sends nothing.
  // Each chunk only notes the time (etcd sends 32 KiB at a time: thousands of them); a timer looks at it.
  let lastAt = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - lastAt >= stallMs) {
      source.destroy(new Error(`no snapshot data from ${from} for ${stallMs / 1000} s after ${formatBytes(bytes)}: its etcd looks frozen (stopped process, stuck disk or network)`));
    }
  }, Math.max(10, Math.min(1000, stallMs / 10)));
  // Tests only: die once part of the snapshot is on disk (the stat runs only with the fault set).
  const killMidway = process.env.MEDIC_FAULT_KILL_AT === 'mid-snapshot';
  const blobs = new Transform({
    writableObjectMode: true,
    // Megabytes, not Node's default 16 KiB, may wait between the member and the disk: the gRPC stream is not
    // paused after every chunk while one write is on its way, and the file gets its chunks several to a write.
    readableHighWaterMark: BUFFER_BYTES,
    transform(chunk: { blob: Buffer }, _enc, cb) {
      if (killMidway && existsSync(tmp) && statSync(tmp).size > 0) killAtFault('mid-snapshot');
      bytes += chunk.blob.length;
      lastAt = Date.now();
      cb(null, chunk.blob);
    },
  });
  // While it streams, a sweep of left-behind partial files in this process never takes it.
  const inFlight = writingPartial(tmp);
  try {
    try {
      await pipeline(source, blobs, createWriteStream(tmp, { mode: 0o600, highWaterMark: BUFFER_BYTES }), { signal });
    } catch (err) {
      // Cancel the gRPC call too: destroying the stream alone leaves it open on the member.
      source.cancel?.();
      rmSync(tmp, { force: true });
      if (signal?.aborted) throw new Error(`snapshot stopped after ${formatBytes(bytes)}: ${stopReason(signal)}; the partial file was removed`);
      throw new Error(`snapshot from ${from} failed after ${formatBytes(bytes)}: ${describeStreamError(err, tmp)}; the partial file was removed`);
    } finally {
      clearInterval(timer);
    }
    // A leftover .partial from a crash keeps its old mode when reopened: set it.
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  } finally {
    inFlight.done();
  }
  return { bytes, revisionBefore };
}
