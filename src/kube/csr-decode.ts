import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Extensions, SubjectAlternativeName, type Name } from '@peculiar/asn1-x509';

/** What a reviewer needs from a PKCS#10 request: who it names, for which names, with what key. */
export interface DecodedCsr {
  subject: {
    commonName?: string;
    /** Every CN value, in order: more than one is a trick (Go's signer keeps the last, we would show the first). */
    commonNames: string[];
    /** Every O value, in order (a kubelet's is exactly ["system:nodes"]). */
    organizations: string[];
    /** The whole subject as openssl prints it, e.g. "O=system:nodes, CN=system:node:m1". */
    text: string;
  };
  san: { dns: string[]; ips: string[]; emails: string[]; uris: string[]; /** other kinds, described */ other: string[] };
  key: {
    type: string; // rsa, ec, ed25519, ed448, dsa, …
    bits?: number;
    curve?: string; // P-256, P-384, P-521 (or the OpenSSL name of another)
    /** "RSA 2048", "EC P-256", "Ed25519" */
    text: string;
  };
  signatureAlgorithm: string;
  /** Whether the request is signed by its own key (proof of possession); null when the algorithm is not one checked here. */
  signatureValid: boolean | null;
  /** Its public key (SubjectPublicKeyInfo, DER in base64), to compare with a key it claims to be for. */
  spki?: string;
}

export type CsrDecodeResult = { ok: true; csr: DecodedCsr } | { ok: false; error: string };

const MAX_PEM = 64 * 1024;

const ATTR_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '1.2.840.113549.1.9.1': 'emailAddress',
};
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';

// Signature algorithms checked here, with the digest node:crypto's verify takes (null: the key decides, as for EdDSA).
const SIGNATURES: Record<string, { name: string; digest: string | null }> = {
  '1.2.840.113549.1.1.5': { name: 'sha1WithRSAEncryption', digest: 'sha1' },
  '1.2.840.113549.1.1.11': { name: 'sha256WithRSAEncryption', digest: 'sha256' },
  '1.2.840.113549.1.1.12': { name: 'sha384WithRSAEncryption', digest: 'sha384' },
  '1.2.840.113549.1.1.13': { name: 'sha512WithRSAEncryption', digest: 'sha512' },
  '1.2.840.10045.4.3.2': { name: 'ecdsa-with-SHA256', digest: 'sha256' },
  '1.2.840.10045.4.3.3': { name: 'ecdsa-with-SHA384', digest: 'sha384' },
  '1.2.840.10045.4.3.4': { name: 'ecdsa-with-SHA512', digest: 'sha512' },
  '1.3.101.112': { name: 'Ed25519', digest: null },
  '1.3.101.113': { name: 'Ed448', digest: null },
};

const CURVES: Record<string, { name: string; bits: number }> = {
  prime256v1: { name: 'P-256', bits: 256 },
  secp384r1: { name: 'P-384', bits: 384 },
  secp521r1: { name: 'P-521', bits: 521 },
};

/** Decodes a CSR object's `spec.request`: base64 of the PEM, as the API carries it. */
export function decodeCsrRequest(requestBase64: string | undefined): CsrDecodeResult {
  if (!requestBase64) return { ok: false, error: 'the CSR carries no request' };
  if (requestBase64.length > (MAX_PEM * 4) / 3 + 4) return { ok: false, error: 'the request is too large to be a CSR' };
  return decodePkcs10Pem(Buffer.from(requestBase64, 'base64').toString('latin1'));
}

/** Decodes one PEM "CERTIFICATE REQUEST" block. Never throws: a malformed request is an error result. */
export function decodePkcs10Pem(pem: string): CsrDecodeResult {
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem.slice(0, MAX_PEM));
  if (!m) return { ok: false, error: 'the request is not a PEM "CERTIFICATE REQUEST" block' };
  const der = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
  try {
    return { ok: true, csr: decodeDer(der) };
  } catch (err) {
    return { ok: false, error: `the request is not a valid PKCS#10 certification request: ${(err as Error).message.split('\n')[0]}` };
  }
}

function decodeDer(der: Buffer): DecodedCsr {
  const req = AsnConvert.parse(der, CertificationRequest);
  const info = req.certificationRequestInfo;
  const spkiDer = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  const key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  const sig = SIGNATURES[req.signatureAlgorithm.algorithm];
  return {
    subject: subjectOf(info.subject),
    san: sansOf(info.attributes ?? []),
    key: describeKey(key),
    signatureAlgorithm: sig?.name ?? req.signatureAlgorithm.algorithm,
    signatureValid: sig && req.certificationRequestInfoRaw ? checkSignature(sig.digest, req.certificationRequestInfoRaw, key, req.signature) : null,
    spki: key.export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}

function subjectOf(name: Name): DecodedCsr['subject'] {
  const parts: [string, string][] = [];
  for (const rdn of name) for (const atv of rdn) parts.push([ATTR_NAMES[atv.type] ?? atv.type, atv.value.toString()]);
  return {
    commonName: parts.find(([k]) => k === 'CN')?.[1],
    commonNames: parts.filter(([k]) => k === 'CN').map(([, v]) => v),
    organizations: parts.filter(([k]) => k === 'O').map(([, v]) => v),
    text: parts.map(([k, v]) => `${k}=${v}`).join(', '),
  };
}

function sansOf(attributes: Iterable<{ type: string; values: ArrayBuffer[] }>): DecodedCsr['san'] {
  const san: DecodedCsr['san'] = { dns: [], ips: [], emails: [], uris: [], other: [] };
  for (const attr of attributes) {
    if (attr.type !== EXTENSION_REQUEST) continue;
    for (const value of attr.values) {
      for (const ext of AsnConvert.parse(value, Extensions)) {
        if (ext.extnID !== SUBJECT_ALT_NAME) continue;
        for (const g of AsnConvert.parse(ext.extnValue.buffer, SubjectAlternativeName)) {
          if (g.dNSName !== undefined) san.dns.push(g.dNSName);
          else if (g.iPAddress !== undefined) san.ips.push(normalizeIp(g.iPAddress));
          else if (g.rfc822Name !== undefined) san.emails.push(g.rfc822Name);
          else if (g.uniformResourceIdentifier !== undefined) san.uris.push(g.uniformResourceIdentifier);
          else if (g.registeredID !== undefined) san.other.push(`registeredID:${g.registeredID}`);
          else if (g.otherName) san.other.push(`otherName:${g.otherName.typeId}`);
          else if (g.directoryName) san.other.push(`dirName:${subjectOf(g.directoryName).text}`);
          else san.other.push('an unsupported name');
        }
      }
    }
  }
  return san;
}

/** IPv6 in its short form (as Node and Kubernetes print it), so it compares equal to a Node's address. */
function normalizeIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

function describeKey(key: KeyObject): DecodedCsr['key'] {
  const type = key.asymmetricKeyType ?? 'unknown';
  const d = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss' || type === 'dsa') return { type, bits: d.modulusLength, text: `${type.toUpperCase()} ${d.modulusLength}` };
  if (type === 'ec') {
    const c = CURVES[d.namedCurve ?? ''];
    return { type, curve: c?.name ?? d.namedCurve, bits: c?.bits, text: `EC ${c?.name ?? d.namedCurve}` };
  }
  if (type === 'ed25519') return { type, bits: 256, text: 'Ed25519' };
  if (type === 'ed448') return { type, bits: 456, text: 'Ed448' };
  return { type, text: type };
}

function checkSignature(digest: string | null, data: ArrayBuffer, key: KeyObject, signature: ArrayBuffer): boolean {
  try {
    return verify(digest, Buffer.from(data), key, Buffer.from(signature));
  } catch {
    return false;
  }
}
