import type { HostConfig } from '../config/schema.js';
import type { SshTarget } from '../ssh/exec.js';

/** How to reach a master's or a node's host, straight from the inventory (host key pinned there). */
export function sshTargetOf(m: HostConfig): SshTarget {
  // The inventory check requires ssh on every platform with host access: only a step planned wrongly gets here.
  if (!m.ssh) throw new Error(`${m.name} has no SSH access in the inventory (its platform reaches it through Kubernetes only)`);
  return { host: m.host, port: m.ssh.port, user: m.ssh.user, keyFile: m.ssh.keyFile, hostKeyFingerprint: m.ssh.hostKeyFingerprint };
}
