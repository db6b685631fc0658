import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Client } from 'ssh2';
import { HostKeyMismatch, SshFailed } from '../errors.js';
import { opensshFingerprint } from './fingerprint.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  keyFile: string;
  hostKeyFingerprint: string;
}

export interface ExecOptions {
  /** Sent on the command's stdin (file contents travel this way, never on the command line). */
  input?: string | Buffer | NodeJS.ReadableStream;
  /** Binary stdout (an archive) goes here, whole, instead of into the capped `stdout` string. */
  stdoutTo?: NodeJS.WritableStream;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Bytes of stdout and of stderr kept; the rest is counted and dropped. */
  maxOutputBytes?: number;
  /**
   * Stops the command: the connection is closed at once. sshd neither kills a
   * command without a pty when its channel or connection closes nor, for root
   * logins, honours a "signal" request: the command must end itself when its
   * session goes (see src/ssh/session-watch.ts).
   */
  signal?: AbortSignal;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  ms: number;
}

/**
 * Runs one command on a host over SSH. The host key must match the pinned
 * fingerprint before anything is sent (no trust on first use); connect and
 * command are each bounded; output is captured up to a limit.
 */
export function sshExec(target: SshTarget, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const commandTimeoutMs = opts.commandTimeoutMs ?? 60_000;
  const max = opts.maxOutputBytes ?? 64 * 1024;
  const where = `${target.user}@${target.host}:${target.port}`;
  const t0 = Date.now();

  return new Promise((resolve, reject) => {
    const conn = new Client();
    let seenKey: string | null = null;
    let settled = false;
    let commandTimer: NodeJS.Timeout | undefined;
    const finish = (err: Error | null, result?: ExecResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(commandTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      conn.end();
      if (err) reject(err);
      else resolve(result!);
    };
    const onAbort = () => finish(new SshFailed(`${where}: stopped (${reasonOf(opts.signal!)}); the connection was closed, so the command on the host ends`));
    if (opts.signal?.aborted) return finish(new SshFailed(`${where}: not started (${reasonOf(opts.signal)})`));
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    // A stream source (a file to upload) may fail before the connection is up: that fails this command.
    if (opts.input && typeof opts.input !== 'string' && !Buffer.isBuffer(opts.input)) {
      opts.input.on('error', (e: Error) => finish(new SshFailed(`${where}: sending input failed: ${e.message}`)));
    }

    conn.on('ready', () => {
      conn.exec(command, (err, stream) => {
        if (err) return finish(new SshFailed(`${where}: could not start the command: ${err.message}`));
        let stdout: Buffer = Buffer.alloc(0);
        let stderr: Buffer = Buffer.alloc(0);
        let truncated = false;
        const keep = (buf: Buffer, chunk: Buffer) => {
          if (buf.length >= max) {
            truncated = true;
            return buf;
          }
          const room = max - buf.length;
          if (chunk.length > room) truncated = true;
          return Buffer.concat([buf, chunk.subarray(0, room)]);
        };
        commandTimer = setTimeout(() => {
          stream.signal?.('KILL');
          stream.close();
          finish(new SshFailed(`${where}: command did not finish within ${commandTimeoutMs} ms and was stopped`));
        }, commandTimeoutMs);
        if (opts.stdoutTo) stream.pipe(opts.stdoutTo, { end: false });
        else stream.on('data', (d: Buffer) => (stdout = keep(stdout, d)));
        stream.stderr.on('data', (d: Buffer) => (stderr = keep(stderr, d)));
        stream.on('close', (code: number | null, signal: string | null) => {
          finish(null, { code: code ?? null, signal: signal ?? null, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8'), truncated, ms: Date.now() - t0 });
        });
        if (opts.input === undefined) stream.end();
        else if (typeof opts.input === 'string' || Buffer.isBuffer(opts.input)) stream.end(opts.input);
        // A failing source (an unreadable file) or a broken channel fails this command, never the process.
        else pipeline(opts.input, stream).catch((e: Error) => finish(new SshFailed(`${where}: sending input failed: ${e.message}`)));
      });
    });
    conn.on('error', (err) => {
      if (seenKey && seenKey !== target.hostKeyFingerprint) {
        return finish(new HostKeyMismatch(where, target.hostKeyFingerprint, seenKey));
      }
      const timeout = /Timed out while waiting for handshake/i.test(err.message);
      finish(new SshFailed(timeout ? `${where}: no SSH handshake within ${connectTimeoutMs} ms` : `${where}: ${err.message}`));
    });

    let privateKey: Buffer;
    try {
      privateKey = readFileSync(target.keyFile);
    } catch (err) {
      return finish(new SshFailed(`${where}: cannot read the SSH key file ${target.keyFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
    }
    conn.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey,
      readyTimeout: connectTimeoutMs,
      keepaliveInterval: 5000,
      keepaliveCountMax: 3,
      // Pinned host key: compare with the inventory; a mismatch ends the handshake before auth.
      hostVerifier: (key: Buffer) => {
        seenKey = opensshFingerprint(key);
        return seenKey === target.hostKeyFingerprint;
      },
    });
  });
}

function reasonOf(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r ?? 'aborted');
}
