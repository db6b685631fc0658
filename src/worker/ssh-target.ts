import type { HostConfig } from '../config/schema.js';
import type { SshTarget } from '../ssh/exec.js';

/** How to reach a master's or a node's host, straight from the inventory (host key pinned there). */
export function sshTargetOf(m: HostConfig): SshTarget {
  return { host: m.host, port: m.ssh.port, user: m.ssh.user, keyFile: m.ssh.keyFile, hostKeyFingerprint: m.ssh.hostKeyFingerprint };
}
