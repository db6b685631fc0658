import { isMap, isSeq, parseDocument, type Scalar, type YAMLMap } from 'yaml';
import { rebased } from './adapt-config.js';
import { scriptOf } from './pod-manifest.js';
import { scriptFlag } from './pod-script.js';

/**
 * OpenShift 4.1–4.3's etcd-member.yaml runs a second container beside etcd,
 * etcd-metrics: `etcd grpc-proxy start` serving etcd's metrics with the
 * member's metric pair (`--cert-file`/`--key-file`, signed by the etcd metric
 * signer, trusted through `--trusted-ca-file` metric-ca.crt) and reaching
 * etcd with its peer pair (`--cert`/`--key`/`--cacert`). Its flags share names
 * with etcd's own (`--cert-file`, `--key-file`, `--trusted-ca-file`): they are
 * read here, from that container only, never taken for etcd's (podFlag reads
 * the etcd container's).
 */

/** The flags of the proxy's that name files in the pki dir. */
export const PROXY_PKI_FLAGS = ['key', 'key-file', 'cert', 'cert-file', 'cacert', 'trusted-ca-file'] as const;

/** The proxy container's script node: the container named etcd-metrics, else one whose script runs `etcd grpc-proxy`; null when the pod has none. */
function proxyScript(manifest: string): Scalar | null {
  const doc = parseDocument(manifest);
  if (doc.errors.length) return null;
  const containers = doc.getIn(['spec', 'containers'], true);
  if (!isSeq(containers)) return null;
  const scripts = (containers.items.filter(isMap) as YAMLMap[]).map((c) => ({ name: c.get('name'), node: scriptOf(c) }));
  const runsProxy = (s: Scalar | null) => !!s && /(^|\s)(\S*\/)?etcd\s+(\\\n\s*)?grpc-proxy(\s|$)/m.test(String(s.value));
  return (scripts.find((c) => c.name === 'etcd-metrics' && runsProxy(c.node)) ?? scripts.find((c) => runsProxy(c.node)))?.node ?? null;
}

/** One flag of the metrics proxy (`--cert-file /etc/ssl/etcd/system:etcd-metric:${ETCD_DNS_NAME}.crt`), as its script gives it; undefined when the pod runs no proxy or it lacks the flag. */
export function proxyFlag(manifest: string, flag: string): string | undefined {
  const node = proxyScript(manifest);
  if (!node) return undefined;
  try {
    return scriptFlag(String(node.value), flag);
  } catch {
    return undefined;
  }
}

/**
 * The manifest with the proxy's files under `toDir` where they are under
 * `fromDir` (a peer's manifest made a member's whose pki dir the inventory
 * gives elsewhere): changed in the script's text only, every other character
 * as it was, and read back. The same dir, or no proxy: the manifest as it was.
 */
export function withProxyPkiDir(manifest: string, fromDir: string, toDir: string): string {
  const from = fromDir.replace(/\/+$/, '');
  const to = toDir.replace(/\/+$/, '');
  if (from === to) return manifest;
  const node = proxyScript(manifest);
  if (!node?.range) return manifest;
  const [s, e] = node.range;
  const out = manifest.slice(0, s) + manifest.slice(s, e).split(`${from}/`).join(`${to}/`) + manifest.slice(e);
  for (const f of PROXY_PKI_FLAGS) {
    const before = proxyFlag(manifest, f);
    const want = before === undefined ? before : (rebased(before, from, to) ?? before);
    if (proxyFlag(out, f) !== want) throw new Error(`moving the etcd-metrics container's --${f} to ${to} did not hold (it reads ${JSON.stringify(proxyFlag(out, f))}): not written`);
  }
  return out;
}
