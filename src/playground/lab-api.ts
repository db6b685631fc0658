import type { Lab } from '../lab/harness.js';
import type { KubeletState } from '../lab/kube/index.js';
import { resourceType } from '../lab/kube/store.js';

const CSR = resourceType('certificatesigningrequests', 'certificates.k8s.io')!;

/** One lab host as the playground page draws it: its etcd member and, with the Kubernetes stand-in, its kube-apiserver and kubelet. */
export interface LabHostView {
  name: string;
  ip: string;
  running: boolean;
  kube?: { apiserver: boolean; kubelet: KubeletState; pendingCsrs: number };
}

export function labState(lab: Lab): LabHostView[] {
  const kube = lab.kube;
  // CSRs with no condition yet are pending, as `kubectl get csr` shows them.
  const pending = kube ? kube.store.list(CSR).items.filter((c) => !(c.status?.conditions ?? []).length) : [];
  return lab.hosts.map((h): LabHostView => {
    const view: LabHostView = { name: h.name, ip: h.ip, running: h.supervisor.pid() !== null };
    if (kube) {
      const k = kube.kubelet(h.name);
      const mine = [k.clientCsr, k.servingCsr].filter(Boolean);
      view.kube = { apiserver: k.apiUp, kubelet: k.state, pendingCsrs: pending.filter((c) => mine.includes(c.metadata.name)).length };
    }
    return view;
  });
}

export const LAB_OPS = ['stop', 'start', 'break', 'apiserver-stop', 'apiserver-start', 'rebootstrap'] as const;
export type LabOp = (typeof LAB_OPS)[number];

/**
 * A fault the page's buttons play on a host, as an operator or a failure would:
 * etcd stopped or started by moving its manifest, its disk broken, kube-apiserver
 * stopped or started the same way, or the kubelet re-bootstrapping (its client
 * certificate gone: it files a CSR that waits for approval, `/etcd csr`).
 */
export async function labAction(lab: Lab, op: string, host: string): Promise<{ status: number; body: Record<string, unknown> }> {
  if (!(LAB_OPS as readonly string[]).includes(op)) return { status: 404, body: { error: `no lab operation ${op}` } };
  const h = lab.hosts.find((x) => x.name === host);
  if (!h) return { status: 404, body: { error: `no member ${host}` } };
  const kube = lab.kube;
  if (op.startsWith('apiserver-') || op === 'rebootstrap') {
    if (!kube) return { status: 409, body: { error: 'this lab runs without its Kubernetes stand-in' } };
    if (op === 'apiserver-stop') await kube.stopApiserver(h.name);
    else if (op === 'apiserver-start') await kube.startApiserver(h.name);
    else return { status: 200, body: { ok: true, csr: await kube.rebootstrapKubelet(h.name) } };
    return { status: 200, body: { ok: true } };
  }
  if (op === 'stop') await lab.stopMember(h.name);
  else if (op === 'start') await lab.startMember(h.name);
  else await lab.corruptMember(h.name); // a broken disk: crash-loops until replaced
  return { status: 200, body: { ok: true } };
}
