import type { ClusterConfig } from '../config/schema.js';

/** "core@10.0.0.3:22": where a member's host operations run, as plans name it. */
export function sshText(cluster: ClusterConfig, member: string): string {
  const m = cluster.members.find((x) => x.name === member);
  if (!m) throw new Error(`member ${member} is not in ${cluster.name}'s inventory`);
  return m.ssh ? `${m.ssh.user}@${m.host}:${m.ssh.port}` : `${m.host} (no SSH access)`;
}
