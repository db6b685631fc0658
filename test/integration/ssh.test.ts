import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { HostKeyMismatch, SshFailed } from '../../src/errors.js';
import { startLab, type Lab } from '../../src/lab/harness.js';
import { freePort } from '../../src/lab/redis.js';
import { sshExec, type SshTarget } from '../../src/ssh/exec.js';
import { sh } from '../../src/ssh/shell.js';

describe('SSH executor against the lab hosts', () => {
  let lab: Lab;
  let target: SshTarget;
  let silent: Server;
  let silentPort: number;

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'ssh'), subnet: 33, members: 1 });
    const h = lab.hosts[0]!;
    target = { host: h.ip, port: 2222, user: 'root', keyFile: lab.sshKey, hostKeyFingerprint: h.ssh.fingerprint };
    // A port that accepts TCP and then says nothing: a hung host.
    silentPort = await freePort();
    silent = createServer(() => undefined).listen(silentPort, '127.0.0.1');
  });
  afterAll(async () => {
    silent?.close();
    await lab?.stop();
  });

  it('runs a command with the pinned key, returning exit code, output and stdin', async () => {
    const r = await sshExec(target, 'cat; echo " err" >&2; exit 3', { input: 'hello from stdin' });
    expect(r).toMatchObject({ code: 3, stdout: 'hello from stdin', stderr: ' err\n', truncated: false });
  });

  it('refuses a host whose key differs from the pinned one, before running anything', async () => {
    const marker = join(lab.hosts[0]!.root, 'mismatch-marker');
    const wrong = { ...target, hostKeyFingerprint: 'SHA256:' + 'x'.repeat(43) };
    const err = await sshExec(wrong, sh`touch ${marker}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyMismatch);
    expect((err as Error).message).toBe(`host key of root@${target.host}:2222 is ${target.hostKeyFingerprint}, but the inventory pins SHA256:${'x'.repeat(43)}; refusing to connect`);
    expect(existsSync(marker)).toBe(false);
  });

  it('fails fast and clearly on a refused port, and within the bound on a silent one', async () => {
    const refused = await sshExec({ ...target, port: await freePort() }, 'true').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SshFailed);
    expect((refused as Error).message).toMatch(/ECONNREFUSED/);

    const t0 = Date.now();
    const hung = await sshExec({ ...target, host: '127.0.0.1', port: silentPort }, 'true', { connectTimeoutMs: 800 }).catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(SshFailed);
    expect((hung as Error).message).toBe(`root@127.0.0.1:${silentPort}: no SSH handshake within 800 ms`);
    expect(Date.now() - t0).toBeLessThan(10_000); // a bound, not a timing: it did not hang
  });

  it('stops a command that runs past its timeout', async () => {
    const err = await sshExec(target, 'sleep 30', { commandTimeoutMs: 500 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`root@${target.host}:2222: command did not finish within 500 ms and was stopped`);
  });

  it('keeps only the first bytes of a large output and says so', async () => {
    const r = await sshExec(target, 'head -c 100000 /dev/zero | tr "\\0" a', { maxOutputBytes: 1000 });
    expect(r.stdout).toHaveLength(1000);
    expect(r.truncated).toBe(true);
  });

  it('quotes hostile values so the remote shell reads them literally', async () => {
    const file = join(lab.hosts[0]!.root, "odd name; $(touch pwned) `id` 'q'");
    const r = await sshExec(target, sh`printf %s ${'x'} > ${file} && cat ${file}`);
    expect(r.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('x');
    expect(existsSync(join(lab.hosts[0]!.root, 'pwned'))).toBe(false);
    expect(() => sh`echo ${'a\nb'}`).toThrow(/newline/);
  });
});
