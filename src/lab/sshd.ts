import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
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

/** Starts a real sshd, as root, on its own loopback address: one per lab host. */
export async function startSshd(dir: string, address: string, port: number, authorizedKeys: string, path?: string): Promise<SshHost> {
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const fingerprint = await makeSshKey(hostKey, `lab-host-${address}`);
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
      // The host's own tools first (a fault can put a broken one there), then the usual PATH.
      ...(path ? [`SetEnv PATH=${path}`] : []),
      '',
    ].join('\n'),
  );
  // -D keeps sshd in the foreground so the lab owns the process and can stop it.
  const proc = spawn('/usr/sbin/sshd', ['-D', '-f', config, '-E', join(dir, 'sshd.log')], { stdio: 'ignore' });
  return { hostKey, fingerprint, process: proc };
}
