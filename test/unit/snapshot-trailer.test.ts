import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { TrailerCheck, verifySnapshotFile } from '../../src/backup/trailer.js';

const dir = mkdtempSync(join(tmpdir(), 'medic-trailer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A body followed by its sha256, as etcd writes a snapshot. */
function snapshotOf(body: Buffer): Buffer {
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('the sha256 trailer check, as a stream', () => {
  it('matches whatever the chunk sizes, including chunks shorter than the trailer', async () => {
    const body = randomBytes(100_003);
    const file = snapshotOf(body);
    for (const sizes of [[1], [7, 31, 32, 33], [65_536], [file.length]]) {
      const chunks: Buffer[] = [];
      for (let at = 0, i = 0; at < file.length; i++) {
        const n = sizes[i % sizes.length]!;
        chunks.push(file.subarray(at, at + n));
        at += n;
      }
      const check = new TrailerCheck();
      await pipeline(Readable.from(chunks), check);
      expect(check.result()).toEqual({ bytes: file.length, sha256: createHash('sha256').update(body).digest('hex'), matches: true });
    }
  });

  it('rejects a truncated, a corrupted and a too-short file, naming it', async () => {
    const file = snapshotOf(randomBytes(10_000));
    writeFileSync(join(dir, 'truncated.db'), file.subarray(0, 6000));
    await expect(verifySnapshotFile(join(dir, 'truncated.db'))).rejects.toThrow('truncated.db: its sha256 trailer does not match its contents (truncated or corrupted)');
    const bad = Buffer.from(file);
    bad[100] = bad[100]! ^ 1;
    writeFileSync(join(dir, 'corrupted.db'), bad);
    await expect(verifySnapshotFile(join(dir, 'corrupted.db'))).rejects.toThrow('corrupted.db: its sha256 trailer does not match');
    writeFileSync(join(dir, 'short.db'), file.subarray(0, 32));
    await expect(verifySnapshotFile(join(dir, 'short.db'))).rejects.toThrow('short.db is 32 bytes: not a snapshot');
    writeFileSync(join(dir, 'good.db'), file);
    await expect(verifySnapshotFile(join(dir, 'good.db'))).resolves.toMatchObject({ bytes: 10_032 });
  });

  it('keeps memory flat: verifying a 512 MB file grows the heap and buffers by far less than the file', async () => {
    // The file: 512 MB of a repeated random block, then the sha256 of it all.
    const block = randomBytes(1024 * 1024);
    const hash = createHash('sha256');
    const big = join(dir, 'big.db');
    const out = createWriteStream(big);
    for (let i = 0; i < 512; i++) {
      hash.update(block);
      if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((r) => out.end(hash.digest(), () => r()));

    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    global.gc?.();
    const before = used();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, used())), 5);
    const r = await verifySnapshotFile(big);
    clearInterval(sampler);
    peak = Math.max(peak, used());
    expect(r.bytes).toBe(512 * 1024 * 1024 + 32);
    // Reading it whole would add 512 MB; streaming holds a few 1 MB chunks at a time.
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);
});
