import { signCsr, type Ca, type Usage } from './pki.js';
import { resourceType, type ObjectStore } from './store.js';

const CSR = resourceType('certificatesigningrequests', 'certificates.k8s.io')!;

/** The usages each built-in signer allows, and the one it requires (kube-controller-manager's csrsigning). */
const SIGNERS: Record<string, { allowed: Usage[]; required: Usage }> = {
  'kubernetes.io/kube-apiserver-client-kubelet': { allowed: ['digital signature', 'key encipherment', 'client auth'], required: 'client auth' },
  'kubernetes.io/kubelet-serving': { allowed: ['digital signature', 'key encipherment', 'server auth'], required: 'server auth' },
  'kubernetes.io/kube-apiserver-client': { allowed: ['digital signature', 'key encipherment', 'client auth'], required: 'client auth' },
};

/**
 * Issues the certificate of an approved CSR of a built-in signer into status.certificate,
 * or marks it Failed when its usages do not fit the signer; other signers are left alone,
 * as the real controller leaves them to their own signers.
 */
export class CsrSigner {
  constructor(
    private readonly store: ObjectStore,
    private readonly ca: Ca,
    private readonly workDir: string,
    private readonly log: (s: string) => void,
  ) {}

  async sign(name: string): Promise<void> {
    const csr = this.store.find(CSR, name);
    const signer = csr && SIGNERS[csr.spec.signerName];
    if (!csr || !signer || csr.status?.certificate) return;
    const usages: Usage[] = csr.spec.usages ?? [];
    const wrong = usages.filter((u) => !signer.allowed.includes(u));
    let status: Record<string, unknown>;
    try {
      if (wrong.length || !usages.includes(signer.required)) throw new Error(`usages ${JSON.stringify(usages)} are not allowed by signer ${csr.spec.signerName}`);
      const seconds = csr.spec.expirationSeconds ?? 365 * 86_400;
      const pem = await signCsr(this.workDir, this.ca, Buffer.from(csr.spec.request, 'base64').toString(), usages, { notAfter: new Date(Date.now() + seconds * 1000) });
      status = { ...csr.status, certificate: Buffer.from(pem).toString('base64') };
    } catch (err) {
      const failed = { type: 'Failed', status: 'True', reason: 'SignerValidationFailure', message: (err as Error).message.slice(0, 300), lastUpdateTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
      status = { ...csr.status, conditions: [...(csr.status?.conditions ?? []), { ...failed, lastTransitionTime: failed.lastUpdateTime }] };
    }
    const latest = this.store.find(CSR, name);
    if (!latest) return; // deleted while it was signed
    this.store.update(CSR, name, undefined, { ...latest, status: { ...latest.status, ...status } });
    this.log(`signed csr ${name}${status.certificate ? '' : ' (failed)'}`);
  }
}
