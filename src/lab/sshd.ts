import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './proc.js';

export interface SshHost {
  hostKey: string;
  fingerprint: string; // SHA256:… as OpenSSH prints it
  process: ChildProcess;
}

/** Makes a key pair with ssh-keygen and returns its OpenSSH fingerprint. */
export async function makeSshKey(path: string, comment: string): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', path]);
  return stdout.split(' ')[1]!;
}

/** How a restarted host's sshd differs from the one before (faults a test injects). */
export interface SshdChange {
  /** A new host key: the host was rebuilt, or someone sits in between. */
  newHostKey?: boolean;
  /** SSH sessions get a PATH without these commands: a host without etcd-client, say. */
  withoutTools?: string[];
  /** The host's own tools, first on its sessions' PATH (a fault can put a broken one there). */
  binDir?: string;
  /** More variables in its sessions' environment: a locale the host lacks makes every bash warn on stderr, as on many real hosts. */
  env?: Record<string, string>;
}

/**
 * A directory of links to every command on the standard PATH but the given
 * ones. (/bin is /usr/bin on Debian, so dropping directories from PATH cannot hide one tool.)
 */
function pathWithout(dir: string, tools: string[]): string {
  const out = join(dir, `path-without-${tools.join('-')}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const seen = new Set(tools);
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (seen.has(name)) continue;
      seen.add(name);
      symlinkSync(join(d, name), join(out, name));
    }
  }
  return out;
}

/** Starts a real sshd, as root, on its own loopback address: one per lab host. A restart keeps the host key unless told otherwise. */
export async function startSshd(dir: string, address: string, port: number, authorizedKeys: string, change: SshdChange = {}): Promise<SshHost> {
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  if (change.newHostKey) for (const f of [hostKey, `${hostKey}.pub`]) rmSync(f, { force: true });
  const fingerprint = existsSync(hostKey)
    ? (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', hostKey])).stdout.split(' ')[1]!
    : await makeSshKey(hostKey, `lab-host-${address}`);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress ${address}:${port}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      'MaxStartups 100:30:200',
      'LogLevel ERROR',
      // The host's own tools first (a fault can put a broken one there), then the usual PATH, less any tools a fault hides.
      // SHLVL=1: the login shell of a session counts itself nested, so it does not run the machine's root ~/.bashrc (bash
      // does for a top-level shell started by sshd). A lab host's sessions are then the same on every machine: that rc
      // file is this machine's, not the host's (here it prepends its own PATH and costs ~0.1 s of CPU per session). A
      // host whose shell prints on stderr is a fault the tests set on purpose (`env`).
      `SetEnv PATH=${[change.binDir, change.withoutTools?.length ? pathWithout(dir, change.withoutTools) : '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'].filter(Boolean).join(':')} SHLVL=1${Object.entries(change.env ?? {}).map(([k, v]) => ` ${k}=${v}`).join('')}`,
      '',
    ].join('\n'),
  );
  // -D keeps sshd in the foreground so the lab owns the process and can stop it.
  const proc = spawn('/usr/sbin/sshd', ['-D', '-f', config, '-E', join(dir, 'sshd.log')], { stdio: 'ignore' });
  return { hostKey, fingerprint, process: proc };
}
