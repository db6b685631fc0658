import type { V1CertificateSigningRequest, V1CertificateSigningRequestCondition } from '@kubernetes/client-node';
import type { KubeCluster } from './client.js';
import { KubeError, type KubeErrorKind } from './errors.js';

export type Csr = V1CertificateSigningRequest;

/** Where a CSR stands, read from its conditions and status (as `kubectl get csr` shows it). */
export type CsrState = 'pending' | 'approved' | 'issued' | 'denied' | 'failed';

export interface CsrDecisionSeen {
  type: 'Approved' | 'Denied' | 'Failed';
  reason?: string;
  message?: string;
  at?: Date;
  /** The field manager that last wrote the approval subresource (e.g. "kubectl"), when the server records it. */
  manager?: string;
}

/** What the bot writes as the condition's reason, as kubectl writes "KubectlApprove". */
export const APPROVE_REASON = 'EtcdMedicApprove';
export const DENY_REASON = 'EtcdMedicDeny';
/** The field manager of the bot's writes: managedFields then say who decided. */
export const FIELD_MANAGER = 'etcd-medic';

export function csrState(csr: Csr): { state: CsrState; decision?: CsrDecisionSeen } {
  const conds = (csr.status?.conditions ?? []).filter((c) => c.status === 'True' || c.status === undefined);
  const seen = (c: V1CertificateSigningRequestCondition): CsrDecisionSeen => ({
    type: c.type as CsrDecisionSeen['type'],
    reason: c.reason,
    message: c.message,
    at: c.lastUpdateTime ?? c.lastTransitionTime,
    manager: approvalManager(csr),
  });
  const denied = conds.find((c) => c.type === 'Denied');
  if (denied) return { state: 'denied', decision: seen(denied) };
  const failed = conds.find((c) => c.type === 'Failed');
  if (failed) return { state: 'failed', decision: seen(failed) };
  const approved = conds.find((c) => c.type === 'Approved');
  if (approved) return { state: csr.status?.certificate ? 'issued' : 'approved', decision: seen(approved) };
  return { state: 'pending' };
}

function approvalManager(csr: Csr): string | undefined {
  const entries = (csr.metadata?.managedFields ?? []).filter((f) => f.subresource === 'approval' && f.manager);
  return entries.at(-1)?.manager;
}

/** "approved (KubectlApprove, by kubectl: This CSR was approved by kubectl certificate approve.)" */
export function describeDecision(state: CsrState, d: CsrDecisionSeen | undefined): string {
  if (!d) return state;
  const who = d.manager ? `by ${d.manager}` : '';
  const head = [d.reason, who].filter(Boolean).join(', ');
  return `${state}${head || d.message ? ` (${head}${head && d.message ? ': ' : ''}${d.message ?? ''})` : ''}`;
}

export async function listCsrs(k: KubeCluster): Promise<{ items: Csr[]; resourceVersion: string }> {
  const list = await k.call((o) => k.certificates.listCertificateSigningRequest({}, o));
  return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
}

/** CSRs nobody has approved or denied yet, oldest first. */
export async function listPendingCsrs(k: KubeCluster): Promise<Csr[]> {
  const { items } = await listCsrs(k);
  return items
    .filter((c) => csrState(c).state === 'pending')
    .sort((a, b) => (a.metadata?.creationTimestamp?.getTime() ?? 0) - (b.metadata?.creationTimestamp?.getTime() ?? 0));
}

/** One CSR by name; a KubeError('not-found') says so when there is none. */
export async function getCsr(k: KubeCluster, name: string): Promise<Csr> {
  try {
    return await k.call((o) => k.certificates.readCertificateSigningRequest({ name }, o));
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') {
      throw new KubeError('not-found', `no CSR named ${name} in cluster ${k.cluster}`, 404);
    }
    throw err;
  }
}

export interface CsrDecisionRequest {
  name: string;
  decision: 'approve' | 'deny';
  /** Who decided, as the condition's message records it (e.g. "@alice (U012AB) in #inc-42"). */
  by: string;
  /** Refuse when the CSR is no longer the one a person saw: a different uid, or a different request. */
  expect?: { uid?: string; request?: string };
  /** Attempts on 409 Conflict, each re-reading the CSR first. */
  maxAttempts?: number;
}

export type CsrDecisionResult =
  | { ok: true; csr: Csr; attempts: number; /** true when this same decision was already recorded (a retried click). */ already: boolean }
  | { ok: false; refusal: 'not-found' | 'decided' | 'changed' | 'conflict' | KubeErrorKind; message: string; attempts: number };

/** The two calls an approval makes; the real ones go to the API server, tests can script them. */
export interface CsrApprovalApi {
  get(name: string): Promise<Csr>;
  replaceApproval(name: string, body: Csr): Promise<Csr>;
}

export function csrApprovalApi(k: KubeCluster): CsrApprovalApi {
  return {
    get: (name) => getCsr(k, name),
    replaceApproval: (name, body) => k.call((o) => k.certificates.replaceCertificateSigningRequestApproval({ name, body, fieldManager: FIELD_MANAGER }, o)),
  };
}

/**
 * Approves or denies a CSR through its approval subresource, as `kubectl
 * certificate approve` does: read it, add the condition, write it back with the
 * resourceVersion that was read. A 409 means someone changed it meanwhile: read
 * again and retry, a bounded number of times. Refuses a CSR that someone else
 * already decided, saying who when the server recorded it. Never throws.
 */
export function decideCsr(k: KubeCluster, req: CsrDecisionRequest): Promise<CsrDecisionResult> {
  return decideCsrWith(csrApprovalApi(k), req);
}

export async function decideCsrWith(api: CsrApprovalApi, req: CsrDecisionRequest, now: () => Date = () => new Date()): Promise<CsrDecisionResult> {
  const max = req.maxAttempts ?? 5;
  const want = req.decision === 'approve' ? 'Approved' : 'Denied';
  const reason = req.decision === 'approve' ? APPROVE_REASON : DENY_REASON;
  const message = `${want} by ${req.by} with etcd-medic`;
  const failed = (err: unknown, attempts: number): CsrDecisionResult => {
    const e = err instanceof KubeError ? err : new KubeError('error', String((err as Error)?.message ?? err));
    if (e.kind === 'not-found') return { ok: false, refusal: 'not-found', message: attempts > 1 ? `CSR ${req.name} was deleted meanwhile` : e.reason, attempts };
    return { ok: false, refusal: e.kind, message: e.reason, attempts };
  };
  let attempts = 0;
  for (;;) {
    attempts += 1;
    let csr: Csr;
    try {
      csr = await api.get(req.name);
    } catch (err) {
      return failed(err, attempts);
    }
    if (req.expect?.uid && csr.metadata?.uid !== req.expect.uid) {
      return { ok: false, refusal: 'changed', message: `CSR ${req.name} was deleted and made again since it was shown (uid ${csr.metadata?.uid}, shown ${req.expect.uid}); look at it again`, attempts };
    }
    if (req.expect?.request && csr.spec.request !== req.expect.request) {
      return { ok: false, refusal: 'changed', message: `CSR ${req.name} asks for something else than what was shown; look at it again`, attempts };
    }
    const { state, decision } = csrState(csr);
    if (state !== 'pending') {
      // The same decision by the same person: a retried click, or a write that landed before its answer was lost.
      if (decision?.type === want && decision.reason === reason && decision.message === message) return { ok: true, csr, attempts, already: true };
      return { ok: false, refusal: 'decided', message: `CSR ${req.name} is already ${describeDecision(state, decision)}; nothing changed`, attempts };
    }
    const at = now();
    const body: Csr = {
      ...csr,
      status: {
        ...csr.status,
        conditions: [...(csr.status?.conditions ?? []), { type: want, status: 'True', reason, message, lastUpdateTime: at, lastTransitionTime: at }],
      },
    };
    try {
      return { ok: true, csr: await api.replaceApproval(req.name, body), attempts, already: false };
    } catch (err) {
      if (err instanceof KubeError && err.kind === 'conflict') {
        if (attempts < max) continue;
        return { ok: false, refusal: 'conflict', message: `CSR ${req.name} kept changing: ${attempts} attempts each met a conflict (409); nothing changed`, attempts };
      }
      return failed(err, attempts);
    }
  }
}
