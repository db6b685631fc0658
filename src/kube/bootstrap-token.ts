import { parse as parseYaml } from 'yaml';
import type { KubeCluster } from './client.js';
import { KubeError } from './errors.js';

/** The token a bootstrap kubeconfig authenticates with, or why none can be read from it. */
export type BootstrapCredential = { token: string; id: string | null } | { none: string };

/**
 * The bearer token of a kubeconfig's current user (bootstrap-kubelet.conf: the
 * bootstrap token `<id>.<secret>`; OpenShift's node-bootstrapper: a service
 * account token). Pure. Only the id of a bootstrap token is ever shown; the
 * token itself stays in memory for one API call.
 */
export function bootstrapCredential(text: string): BootstrapCredential {
  let doc: any;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return { none: `it is not YAML (${(err as Error).message.split('\n')[0]})` };
  }
  const ctxName = doc?.['current-context'];
  const ctx = (doc?.contexts ?? []).find((c: any) => c?.name === ctxName)?.context;
  const userName = ctx?.user ?? doc?.users?.[0]?.name;
  const user = (doc?.users ?? []).find((u: any) => u?.name === userName)?.user;
  if (!user) return { none: 'it names no user for its current context' };
  if (typeof user.token !== 'string' || !user.token) {
    return { none: user.tokenFile ? `its user reads its token from ${user.tokenFile}` : 'its user has no token (a client certificate, or an exec plugin)' };
  }
  const id = /^([a-z0-9]{6})\.[a-z0-9]{16}$/.exec(user.token)?.[1] ?? null;
  return { token: user.token, id };
}

/** What the API server said of a bootstrap token. */
export type TokenVerdict = { ok: true } | { ok: false; kind: 'rejected' | 'forbidden' | 'unanswered'; reason: string };

/**
 * Asks the API server whether it accepts the token as a kubelet would use it:
 * a bootstrap token may list CSRs (kubeadm's system:node-bootstrapper role),
 * so one list with `limit=1` answers 200 for a valid token, 401 for one that
 * expired or was deleted, 403 for one that authenticates but may not file CSRs.
 */
export async function checkBootstrapToken(k: KubeCluster, token: string): Promise<TokenVerdict> {
  const as = k.withToken(token);
  try {
    await as.call((o) => as.certificates.listCertificateSigningRequest({ limit: 1 }, o));
    return { ok: true };
  } catch (err) {
    const e = err instanceof KubeError ? err : new KubeError('error', (err as Error).message);
    if (e.kind === 'unauthorized') return { ok: false, kind: 'rejected', reason: `the API server answers 401 Unauthorized to it: it expired or was deleted` };
    if (e.kind === 'forbidden') return { ok: false, kind: 'forbidden', reason: `it authenticates but may not list CSRs (403): its group lacks the node-bootstrapper role, so the kubelet could not file one` };
    return { ok: false, kind: 'unanswered', reason: e.reason };
  }
}
