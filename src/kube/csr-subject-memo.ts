import { decodeCsrRequest } from './csr-decode.js';

/**
 * The common name a CSR's request asks for, remembered by the request itself.
 *
 * Decoding a PKCS#10 request (ASN.1, the public key, its signature) takes about a
 * millisecond; the steps that wait for a master's CSRs poll the whole list every
 * few hundred milliseconds and `/etcd status` looks for each master's, so the same
 * bootstrap CSRs were decoded again and again. The key is the request's own text,
 * so a remembered answer can never be out of date: the same bytes decode to the
 * same name. Bounded, oldest forgotten first.
 */
export class CsrSubjectMemo {
  private readonly names = new Map<string, string | null>();

  constructor(
    readonly maxEntries = 2048,
    private readonly decode: (request: string) => string | null = (request) => {
      const d = decodeCsrRequest(request);
      return d.ok ? (d.csr.subject.commonName ?? null) : null;
    },
  ) {}

  /** The request's CN; null when it has none or does not decode (as decodeCsrRequest would say). */
  commonName(request: string | undefined): string | null {
    if (!request) return null;
    const known = this.names.get(request);
    if (known !== undefined) return known;
    const name = this.decode(request);
    if (this.names.size >= this.maxEntries) this.names.delete(this.names.keys().next().value!);
    this.names.set(request, name);
    return name;
  }

  get size(): number {
    return this.names.size;
  }
}

/** The one every reader of CSR lists in this process shares. */
export const csrSubjects = new CsrSubjectMemo();
