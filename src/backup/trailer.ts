import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const TRAILER = 32;

/**
 * etcd appends the sha256 of the database to a snapshot. This sink hashes
 * everything but the last 32 bytes as it streams by, holding back only those
 * 32: memory stays flat whatever the size of the file.
 */
export class TrailerCheck extends Writable {
  private readonly hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  bytes = 0;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (chunk.length >= TRAILER) {
      this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - TRAILER));
      // A copy: keeping a view would pin the whole chunk in memory.
      this.tail = Buffer.from(chunk.subarray(chunk.length - TRAILER));
    } else {
      const all = Buffer.concat([this.tail, chunk]);
      const cut = Math.max(0, all.length - TRAILER);
      this.hash.update(all.subarray(0, cut));
      this.tail = all.subarray(cut);
    }
    cb();
  }

  /** The sha256 of the body, and whether the trailer matches it. Call once, after the stream has finished. */
  result(): { bytes: number; sha256: string; matches: boolean } {
    const sum = this.hash.digest();
    return { bytes: this.bytes, sha256: sum.toString('hex'), matches: this.bytes > TRAILER && sum.equals(this.tail) };
  }
}

/** Reads a snapshot file as a stream and checks its sha256 trailer; a file whose tail does not match is damaged. */
export async function verifySnapshotFile(file: string, signal?: AbortSignal): Promise<{ bytes: number; sha256: string }> {
  const check = new TrailerCheck();
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), check, { signal });
  const r = check.result();
  if (r.bytes <= TRAILER) throw new Error(`${basename(file)} is ${r.bytes} bytes: not a snapshot`);
  if (!r.matches) throw new Error(`${basename(file)}: its sha256 trailer does not match its contents (truncated or corrupted)`);
  return { bytes: r.bytes, sha256: r.sha256 };
}
