import { beforeAll, describe, expect, it } from 'vitest';
import { decodeCsrRequest, decodePkcs10Pem, type DecodedCsr } from '../../src/kube/csr-decode.js';
import { asRequest, opensslCsr } from '../support/csr-pem.js';

// Requests made by openssl at test time, as kubelets and operators make them.
let rsa: string;
let ec: string;
let ed: string;
let p384: string;

beforeAll(async () => {
  [rsa, ec, ed, p384] = await Promise.all([
    opensslCsr('rsa:2048', '/O=system:nodes/O=other-group/CN=system:node:master-1', 'DNS:master-1,DNS:master-1.example.internal,IP:10.20.0.11'),
    opensslCsr('ec:P-256', '/O=system:nodes/CN=system:node:master-2'),
    opensslCsr('ed25519', '/CN=system:node:master-3/O=system:nodes'),
    opensslCsr('ec:P-384', '/C=DE/O=example/OU=ops/CN=someone', 'IP:fd00:0:0:0:0:0:0:11,email:ops@example.com,URI:spiffe://cluster.local/ns/x/sa/y,DNS:x.example'),
  ]);
});

function decoded(pem: string): DecodedCsr {
  const r = decodeCsrRequest(asRequest(pem));
  if (!r.ok) throw new Error(r.error);
  return r.csr;
}

describe('decoding the PKCS#10 request of a CSR', () => {
  it('RSA 2048 with DNS and IP SANs and two O values', () => {
    expect(decoded(rsa)).toEqual({
      subject: { commonName: 'system:node:master-1', commonNames: ['system:node:master-1'], organizations: ['system:nodes', 'other-group'], text: 'O=system:nodes, O=other-group, CN=system:node:master-1' },
      san: { dns: ['master-1', 'master-1.example.internal'], ips: ['10.20.0.11'], emails: [], uris: [], other: [] },
      key: { type: 'rsa', bits: 2048, text: 'RSA 2048' },
      signatureAlgorithm: 'sha256WithRSAEncryption',
      signatureValid: true,
      // The request's public key as DER SubjectPublicKeyInfo: an RSA 2048 one always starts so.
      spki: expect.stringMatching(/^MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA[A-Za-z0-9+/]+IDAQAB$/),
    });
  });

  it('EC P-256 without SANs, as a kubelet client request is', () => {
    const c = decoded(ec);
    expect(c.subject).toEqual({ commonName: 'system:node:master-2', commonNames: ['system:node:master-2'], organizations: ['system:nodes'], text: 'O=system:nodes, CN=system:node:master-2' });
    expect(c.san).toEqual({ dns: [], ips: [], emails: [], uris: [], other: [] });
    expect(c.key).toEqual({ type: 'ec', curve: 'P-256', bits: 256, text: 'EC P-256' });
    expect(c.signatureAlgorithm).toBe('ecdsa-with-SHA256');
    expect(c.signatureValid).toBe(true);
  });

  it('Ed25519', () => {
    const c = decoded(ed);
    expect(c.key).toEqual({ type: 'ed25519', bits: 256, text: 'Ed25519' });
    expect(c.subject.commonName).toBe('system:node:master-3');
    expect(c.signatureValid).toBe(true);
  });

  it('EC P-384 with an IPv6 address (short form), an email and a URI', () => {
    const c = decoded(p384);
    expect(c.key.text).toBe('EC P-384');
    expect(c.subject.text).toBe('C=DE, O=example, OU=ops, CN=someone');
    expect(c.san).toEqual({ dns: ['x.example'], ips: ['fd00::11'], emails: ['ops@example.com'], uris: ['spiffe://cluster.local/ns/x/sa/y'], other: [] });
  });

  it('a request whose signature does not match its key says so', () => {
    const der = Buffer.from(ec.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der.writeUInt8(der.readUInt8(der.length - 3) ^ 0x01, der.length - 3); // a bit of the signature flipped
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const r = decodePkcs10Pem(pem);
    expect(r.ok && r.csr.signatureValid).toBe(false);
  });

  it('malformed input is an error result with the reason, never a throw', () => {
    expect(decodeCsrRequest(undefined)).toEqual({ ok: false, error: 'the CSR carries no request' });
    expect(decodeCsrRequest(asRequest('hello'))).toEqual({ ok: false, error: 'the request is not a PEM "CERTIFICATE REQUEST" block' });
    const cut = ec.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '').slice(0, 80);
    const truncated = decodePkcs10Pem(`-----BEGIN CERTIFICATE REQUEST-----\n${cut}\n-----END CERTIFICATE REQUEST-----`);
    expect(truncated.ok).toBe(false);
    expect(!truncated.ok && truncated.error).toMatch(/^the request is not a valid PKCS#10 certification request: /);
    const garbage = decodePkcs10Pem(`-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from('not asn.1 at all').toString('base64')}\n-----END CERTIFICATE REQUEST-----`);
    expect(garbage.ok).toBe(false);
    // A certificate is not a request.
    expect(decodePkcs10Pem(rsa.replaceAll('CERTIFICATE REQUEST', 'CERTIFICATE')).ok).toBe(false);
    expect(decodeCsrRequest('A'.repeat(200_000))).toEqual({ ok: false, error: 'the request is too large to be a CSR' });
  });
});
