import { Writable } from 'node:stream';

const BLOCK = 512;

/**
 * Reads a tar stream (already gunzipped) as it goes by and keeps the top
 * directories its entries are under, two levels deep
 * (`static-pod-resources/kube-apiserver-pod-7`): what a person needs to know of
 * an OpenShift static_kuberesources archive. Memory stays flat: entry data is
 * skipped, only headers and long names are read. ustar prefixes, GNU long names
 * and pax `path` records are understood.
 */
export class TarTops extends Writable {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes of entry data still to skip (or to collect, for a long name). */
  private skip = 0;
  private collect: { kind: 'L' | 'x'; bytes: Buffer[]; left: number } | null = null;
  private nextName: string | null = null;
  private ended = false;
  readonly tops = new Set<string>();
  entries = 0;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.drain();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private drain(): void {
    for (;;) {
      if (this.ended) {
        this.buf = Buffer.alloc(0);
        return;
      }
      if (this.collect) {
        const take = Math.min(this.collect.left, this.buf.length);
        this.collect.bytes.push(Buffer.from(this.buf.subarray(0, take)));
        this.collect.left -= take;
        this.buf = this.buf.subarray(take);
        if (this.collect.left > 0) return;
        const data = Buffer.concat(this.collect.bytes).toString('utf8');
        if (this.collect.kind === 'L') this.nextName = data.replace(/\0.*$/s, '');
        else {
          const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data);
          if (path) this.nextName = path[1]!;
        }
        this.collect = null;
        continue;
      }
      if (this.skip > 0) {
        const take = Math.min(this.skip, this.buf.length);
        this.buf = this.buf.subarray(take);
        this.skip -= take;
        if (this.skip > 0) return;
        continue;
      }
      if (this.buf.length < BLOCK) return;
      const h = this.buf.subarray(0, BLOCK);
      this.buf = this.buf.subarray(BLOCK);
      if (h.every((b) => b === 0)) {
        this.ended = true;
        continue;
      }
      if (!checksumOk(h)) throw new Error('not a tar archive (a header checksum does not match)');
      const size = parseInt(field(h, 124, 12) || '0', 8);
      if (!Number.isFinite(size) || size < 0) throw new Error('not a tar archive (a header has no size)');
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      const type = String.fromCharCode(h[156]!);
      if (type === 'L' || type === 'x') {
        this.collect = { kind: type, bytes: [], left: size };
        this.skip = padded - size;
        // The padding after the data is skipped once it is collected.
        if (size === 0) this.collect = null;
        continue;
      }
      if (type === 'g') {
        this.skip = padded; // a pax global header describes the archive, not a file
        continue;
      }
      const prefix = h.subarray(257, 263).toString('latin1').startsWith('ustar') ? field(h, 345, 155) : '';
      const name = this.nextName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
      this.nextName = null;
      this.entries++;
      const parts = name.replace(/^\.?\//, '').split('/').filter(Boolean);
      if (parts.length) this.tops.add(parts.slice(0, 2).join('/'));
      this.skip = type === '5' ? 0 : padded;
    }
  }

  /** Throws unless the archive ended as a tar does (its end blocks, no entry cut short). */
  check(): void {
    if (this.entries === 0) throw new Error('the archive holds no files');
    if (this.collect || this.skip > 0) throw new Error('the archive ends in the middle of a file (truncated)');
  }
}

function field(h: Buffer, at: number, len: number): string {
  const s = h.subarray(at, at + len);
  const end = s.indexOf(0);
  return (end < 0 ? s : s.subarray(0, end)).toString('utf8').trim();
}

function checksumOk(h: Buffer): boolean {
  const want = parseInt(field(h, 148, 8), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === want;
}
