import { existsSync } from 'node:fs';
import { run } from './proc.js';

/** The Debian packages the lab runs, and a binary each one provides. */
export const LAB_PACKAGES: Record<string, string> = {
  'etcd-server': '/usr/bin/etcd',
  'etcd-client': '/usr/bin/etcdctl',
  'openssh-server': '/usr/sbin/sshd',
  'redis-server': '/usr/bin/redis-server',
  openssl: '/usr/bin/openssl',
  // Receives the sd_notify messages of Type=notify units (etcd.service as the etcd package has it).
  socat: '/usr/bin/socat',
  // kubectl (1.20 in Debian 12) checks the lab's Kubernetes API stand-in; a newer one already at this path is kept.
  'kubernetes-client': '/usr/bin/kubectl',
};

/** What the tests need beside the lab: a browser that opens the playground's page as a person would. */
export const TEST_PACKAGES: Record<string, string> = {
  chromium: '/usr/bin/chromium',
};

/** Installs whatever lab package (and `extra` package) is missing (as root, with apt-get), or says exactly what to run. */
export async function ensureLabPackages(log: (s: string) => void = () => undefined, extra: Record<string, string> = {}): Promise<void> {
  const missing = Object.entries({ ...LAB_PACKAGES, ...extra })
    .filter(([, bin]) => !existsSync(bin))
    .map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`the lab needs Debian packages ${missing.join(', ')}: run \`sudo apt-get install -y ${missing.join(' ')}\``);
  }
  log(`installing ${missing.join(', ')} with apt-get…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
  await run('apt-get', ['install', '-y', '-qq', ...missing], { env, timeoutMs: 900_000 });
}
