import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { installSystemctl } from '../systemctl.js';
import { UnitSupervisor } from '../unit-supervisor.js';

/** Where a lab host's kubelet keeps its credentials: kubeadm's paths, below the host's root. */
export interface KubeletFiles {
  /** kubelet-client-current.pem: a link to the dated file holding certificate and key, as the kubelet rotates them. */
  cert: string;
  kubeconfig: string;
  bootstrapConfig: string;
}

export function kubeletFiles(hostRoot: string): KubeletFiles {
  return {
    cert: join(hostRoot, 'var/lib/kubelet/pki/kubelet-client-current.pem'),
    kubeconfig: join(hostRoot, 'etc/kubernetes/kubelet.conf'),
    bootstrapConfig: join(hostRoot, 'etc/kubernetes/bootstrap-kubelet.conf'),
  };
}

/** The inventory's per-host kubelet paths for a lab host (the platform's defaults are a real host's). */
export function kubeletInventoryPaths(hostRoot: string): Record<string, string> {
  const f = kubeletFiles(hostRoot);
  return { kubeletCert: f.cert, kubeletConfig: f.kubeconfig, kubeletBootstrapConfig: f.bootstrapConfig };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * Writes the kubelet's client certificate as the kubelet does: a new dated file
 * (certificate and key), then kubelet-client-current.pem pointed at it, and its
 * kubeconfig naming that link (kubeadm's kubelet.conf).
 */
export function writeKubeletCredentials(f: KubeletFiles, server: string, caPem: string, pem: { certPem: string; keyPem: string }): void {
  mkdirSync(dirname(f.cert), { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  let dated = join(dirname(f.cert), `kubelet-client-${stamp}.pem`);
  for (let i = 1; existsSync(dated); i++) dated = join(dirname(f.cert), `kubelet-client-${stamp}-${i}.pem`);
  writeFileSync(dated, `${pem.certPem}${pem.keyPem}`, { mode: 0o600 });
  const tmp = `${f.cert}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync(dated, tmp);
  renameSync(tmp, f.cert);
  mkdirSync(dirname(f.kubeconfig), { recursive: true });
  writeFileSync(
    f.kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'default-cluster', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      users: [{ name: 'default-auth', user: { 'client-certificate': f.cert, 'client-key': f.cert } }],
      contexts: [{ name: 'default-context', context: { cluster: 'default-cluster', namespace: 'default', user: 'default-auth' } }],
      'current-context': 'default-context',
    }),
    { mode: 0o600 },
  );
}

/** kubeadm's bootstrap-kubelet.conf: the bootstrap token a kubelet without credentials files its client CSR with. */
export function writeBootstrapConfig(f: KubeletFiles, server: string, caPem: string, token: string): void {
  mkdirSync(dirname(f.bootstrapConfig), { recursive: true });
  writeFileSync(
    f.bootstrapConfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kubernetes', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      users: [{ name: 'tls-bootstrap-token-user', user: { token } }],
      contexts: [{ name: 'tls-bootstrap-token-user@kubernetes', context: { cluster: 'kubernetes', user: 'tls-bootstrap-token-user' } }],
      'current-context': 'tls-bootstrap-token-user@kubernetes',
    }),
    { mode: 0o600 },
  );
}

/** The token of the bootstrap kubeconfig on the host, or null when it is missing or holds none. */
export function readBootstrapToken(f: KubeletFiles): string | null {
  try {
    const doc = parseYaml(readFileSync(f.bootstrapConfig, 'utf8')) as { users?: { user?: { token?: string } }[] };
    return doc?.users?.[0]?.user?.token ?? null;
  } catch {
    return null;
  }
}

/** The client certificate and key the kubelet would load from its files, or why it cannot. */
export function readKubeletCredentials(f: KubeletFiles): { certPem: string; keyPem: string; notAfter: Date } | { missing: string } {
  if (!existsSync(f.kubeconfig)) return { missing: f.kubeconfig };
  let text: string;
  try {
    lstatSync(f.cert);
    text = readFileSync(f.cert, 'utf8');
  } catch {
    return { missing: f.cert };
  }
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text)?.[0];
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----\n?/.exec(text)?.[0];
  if (!cert || !key) return { missing: f.cert };
  return { certPem: cert, keyPem: key, notAfter: new Date(new X509Certificate(cert).validTo) };
}

/** The lab kubelet's process: it holds the unit up; the lab plays the kubelet itself (LabKubelet). */
export const KUBELET_EXE = '#!/bin/bash\n# The lab kubelet\'s process: it holds the unit up; the lab plays the kubelet itself.\nwhile :; do sleep 3600; done\n';

/**
 * The `kubelet` unit on a lab host, run by the lab's systemd stand-in so that
 * `systemctl stop|start kubelet` over SSH does what it does on a real node. Its
 * process only holds the unit up: the kubelet's work is played in-process by
 * LabKubelet, which follows the unit's state.
 */
export function installKubeletUnit(name: string, hostRoot: string, binDir: string, logDir: string): UnitSupervisor {
  const unitDir = join(hostRoot, 'etc/systemd/system');
  const runDir = join(hostRoot, 'run/systemd');
  mkdirSync(join(unitDir, 'multi-user.target.wants'), { recursive: true });
  mkdirSync(binDir, { recursive: true });
  const exe = join(binDir, 'kubelet');
  writeFileSync(exe, KUBELET_EXE);
  chmodSync(exe, 0o755);
  const unit = join(unitDir, 'kubelet.service');
  writeFileSync(unit, `[Unit]\nDescription=kubelet: The Kubernetes Node Agent\n\n[Service]\nExecStart=${exe}\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n`);
  const link = join(unitDir, 'multi-user.target.wants', 'kubelet.service');
  if (!existsSync(link)) symlinkSync(unit, link);
  installSystemctl(binDir, { unitDir, runDir, logDir });
  return new UnitSupervisor(name, unitDir, runDir, logDir);
}
