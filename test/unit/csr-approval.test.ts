import { describe, expect, it } from 'vitest';
import { APPROVE_REASON, csrState, decideCsrWith, describeDecision, type Csr, type CsrApprovalApi } from '../../src/kube/csrs.js';
import { KubeError, httpError } from '../../src/kube/errors.js';

/** A CSR as the API server keeps it: a resourceVersion that moves on every write. */
function pending(name = 'csr-7xk2p'): Csr {
  return {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name, uid: 'u-1', resourceVersion: '100', creationTimestamp: new Date('2026-11-24T10:00:00Z') },
    spec: { request: 'UEVN', signerName: 'kubernetes.io/kube-apiserver-client-kubelet', usages: ['digital signature', 'client auth'], username: 'system:bootstrap:abcdef', groups: ['system:bootstrappers'] },
    status: {},
  };
}

const conflict = () => httpError(409, { message: 'Operation cannot be fulfilled on certificatesigningrequests.certificates.k8s.io "csr-7xk2p": the object has been modified' });

/**
 * An approval API over one stored CSR with the server's optimistic concurrency:
 * a write carrying a stale resourceVersion is answered 409. `meanwhile` runs
 * before each write, as another client writing between our read and our write.
 */
function server(initial: Csr | null, meanwhile: (stored: Csr, write: number) => Csr | void = () => undefined) {
  let stored = initial && structuredClone(initial);
  let rv = 100;
  const writes: Csr[] = [];
  const api: CsrApprovalApi = {
    async get(name) {
      if (!stored) throw new KubeError('not-found', `no CSR named ${name} in cluster prod`, 404);
      return structuredClone(stored);
    },
    async replaceApproval(_name, body) {
      const changed = stored && meanwhile(stored, writes.length + 1);
      if (changed && stored) {
        rv += 1;
        stored = { ...changed, metadata: { ...changed.metadata, resourceVersion: String(rv) } };
      }
      writes.push(body);
      if (!stored) throw new KubeError('not-found', 'gone', 404);
      if (body.metadata?.resourceVersion !== stored.metadata?.resourceVersion) throw conflict();
      rv += 1;
      stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(rv) } };
      return structuredClone(stored);
    },
  };
  return { api, writes, stored: () => stored };
}

const at = () => new Date('2026-11-24T10:05:00Z');

describe('approving and denying a CSR through the approval subresource', () => {
  it('approves a pending CSR with a condition naming who, as the approval subresource expects', async () => {
    const s = server(pending());
    const res = await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@alice (U01ALICE)' }, at);
    expect(res.ok && res.already).toBe(false);
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]!.metadata?.resourceVersion).toBe('100');
    expect(s.stored()!.status?.conditions).toEqual([
      { type: 'Approved', status: 'True', reason: 'EtcdMedicApprove', message: 'Approved by @alice (U01ALICE) with etcd-medic', lastUpdateTime: at(), lastTransitionTime: at() },
    ]);
    expect(csrState(s.stored()!).state).toBe('approved');
  });

  it('denies with its own reason', async () => {
    const s = server(pending());
    const res = await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'deny', by: '@bob' }, at);
    expect(res.ok).toBe(true);
    expect(s.stored()!.status?.conditions?.[0]).toMatchObject({ type: 'Denied', reason: 'EtcdMedicDeny', message: 'Denied by @bob with etcd-medic' });
  });

  it('on 409 reads again and retries with the new resourceVersion', async () => {
    // Two writes in a row meet a change by someone else (a label added: not a decision).
    const s = server(pending(), (cur, n) => (n <= 2 ? { ...cur, metadata: { ...cur.metadata, labels: { touched: String(n) } } } : undefined));
    const res = await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@alice' }, at);
    expect(res).toMatchObject({ ok: true, attempts: 3, already: false });
    expect(s.writes.map((w) => w.metadata?.resourceVersion)).toEqual(['100', '101', '102']);
    expect(s.stored()!.metadata?.labels).toEqual({ touched: '2' });
  });

  it('gives up after the bounded number of conflicts, saying so, with nothing approved', async () => {
    const s = server(pending(), (cur, n) => ({ ...cur, metadata: { ...cur.metadata, labels: { n: String(n) } } }));
    const res = await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@alice', maxAttempts: 4 }, at);
    expect(res).toEqual({ ok: false, refusal: 'conflict', message: 'CSR csr-7xk2p kept changing: 4 attempts each met a conflict (409); nothing changed', attempts: 4 });
    expect(csrState(s.stored()!).state).toBe('pending');
  });

  it('refuses when someone else approved it between our read and our write, naming who', async () => {
    const byKubectl = (cur: Csr): Csr => ({
      ...cur,
      metadata: { ...cur.metadata, managedFields: [{ manager: 'kubectl', operation: 'Update', subresource: 'approval', apiVersion: 'certificates.k8s.io/v1' }] },
      status: { conditions: [{ type: 'Approved', status: 'True', reason: 'KubectlApprove', message: 'This CSR was approved by kubectl certificate approve.' }] },
    });
    const s = server(pending(), (cur, n) => (n === 1 ? byKubectl(cur) : undefined));
    const res = await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'deny', by: '@bob' }, at);
    expect(res).toEqual({
      ok: false,
      refusal: 'decided',
      message: 'CSR csr-7xk2p is already approved (KubectlApprove, by kubectl: This CSR was approved by kubectl certificate approve.); nothing changed',
      attempts: 2,
    });
    expect(s.stored()!.status?.conditions).toHaveLength(1);
  });

  it('a repeated click of the same decision is a success that changes nothing', async () => {
    const s = server(pending());
    await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@alice' }, at);
    const again = await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@alice' }, at);
    expect(again).toMatchObject({ ok: true, already: true, attempts: 1 });
    expect(s.writes).toHaveLength(1);
    // Someone else's identical click is not "ours": it says who approved first.
    const other = await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@carol' }, at);
    expect(other).toMatchObject({ ok: false, refusal: 'decided', message: `CSR csr-7xk2p is already approved (${APPROVE_REASON}: Approved by @alice with etcd-medic); nothing changed` });
  });

  it('refuses a CSR that is not the one that was shown', async () => {
    const s = server(pending());
    expect(await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@a', expect: { uid: 'u-0' } }, at)).toMatchObject({
      ok: false,
      refusal: 'changed',
      message: 'CSR csr-7xk2p was deleted and made again since it was shown (uid u-1, shown u-0); look at it again',
    });
    expect(await decideCsrWith(s.api, { name: 'csr-7xk2p', decision: 'approve', by: '@a', expect: { uid: 'u-1', request: 'T1RIRVI=' } }, at)).toMatchObject({ ok: false, refusal: 'changed' });
    expect(s.writes).toHaveLength(0);
  });

  it('an unknown CSR name, a failed CSR and a server error are refusals with the reason', async () => {
    expect(await decideCsrWith(server(null).api, { name: 'csr-nope', decision: 'approve', by: '@a' })).toEqual({ ok: false, refusal: 'not-found', message: 'no CSR named csr-nope in cluster prod', attempts: 1 });
    const failedCsr = { ...pending(), status: { conditions: [{ type: 'Failed', status: 'True', reason: 'SignerValidationFailure', message: 'the signer refused it' }] } };
    expect(await decideCsrWith(server(failedCsr).api, { name: 'csr-7xk2p', decision: 'approve', by: '@a' })).toMatchObject({
      refusal: 'decided',
      message: 'CSR csr-7xk2p is already failed (SignerValidationFailure: the signer refused it); nothing changed',
    });
    const forbidden: CsrApprovalApi = {
      get: async () => pending(),
      replaceApproval: async () => {
        throw httpError(403, { message: 'certificatesigningrequests.certificates.k8s.io "csr-7xk2p" is forbidden: user "medic" cannot update resource "certificatesigningrequests/approval"' });
      },
    };
    expect(await decideCsrWith(forbidden, { name: 'csr-7xk2p', decision: 'approve', by: '@a' })).toMatchObject({ ok: false, refusal: 'forbidden', message: expect.stringContaining('cannot update resource "certificatesigningrequests/approval"') });
  });
});

describe('the state of a CSR', () => {
  it('reads pending, approved, issued and denied as kubectl does', () => {
    expect(csrState(pending()).state).toBe('pending');
    const approved = { ...pending(), status: { conditions: [{ type: 'Approved', status: 'True', reason: 'AutoApproved', message: 'Auto approving kubelet client certificate after SubjectAccessReview.' }] } };
    expect(csrState(approved).state).toBe('approved');
    expect(csrState({ ...approved, status: { ...approved.status, certificate: 'LS0t' } }).state).toBe('issued');
    const { state, decision } = csrState({ ...pending(), status: { conditions: [{ type: 'Denied', status: 'True', reason: 'KubectlDeny' }] } });
    expect(describeDecision(state, decision)).toBe('denied (KubectlDeny)');
  });
});
