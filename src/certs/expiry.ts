import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect, createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';

/** A certificate within this many days of its end is a warning; past its end, an error. */
export const WARN_DAYS = 30;
/** `/etcd status` shows a line when any certificate is this close to its end, or past it. */
export const URGENT_DAYS = 7;

export interface CertInfo {
  subject: string; // "CN=m1-server", one attribute a line in Node's form joined with ", "
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  subjectAltName?: string; // "IP Address:10.0.0.1, DNS:m1"
  fingerprint256: string;
}

export type ExpiryLevel = 'ok' | 'warn' | 'error';

export interface Expiry {
  level: ExpiryLevel;
  /** Whole days left (negative once expired). */
  daysLeft: number;
  /** "expires in 12 days (2026-12-06)", "expired 3 days ago (2026-11-21)", "not valid before 2026-12-01" */
  text: string;
}

export type CertReading = { ok: true; cert: CertInfo; expiry: Expiry; /** only when a CA was given: null if the chain and name verify, else why not */ untrusted?: string | null } | { ok: false; error: string };

const DAY = 86_400_000;
const isoDay = (d: Date) => d.toISOString().slice(0, 10);

export function classifyExpiry(cert: Pick<CertInfo, 'notBefore' | 'notAfter'>, now: Date, warnDays = WARN_DAYS): Expiry {
  const left = cert.notAfter.getTime() - now.getTime();
  const daysLeft = Math.floor(left / DAY);
  if (now.getTime() < cert.notBefore.getTime()) return { level: 'error', daysLeft, text: `not valid before ${cert.notBefore.toISOString()}` };
  if (left <= 0) {
    const ago = Math.floor(-left / DAY);
    return { level: 'error', daysLeft, text: `expired ${ago === 0 ? 'today' : `${ago} day${ago === 1 ? '' : 's'} ago`} (${isoDay(cert.notAfter)})` };
  }
  const text = `expires in ${daysLeft === 0 ? 'less than a day' : `${daysLeft} day${daysLeft === 1 ? '' : 's'}`} (${isoDay(cert.notAfter)})`;
  return { level: left < warnDays * DAY ? 'warn' : 'ok', daysLeft, text };
}

function infoOf(x: X509Certificate): CertInfo {
  return {
    subject: x.subject.split('\n').join(', '),
    issuer: x.issuer.split('\n').join(', '),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    subjectAltName: x.subjectAltName,
    fingerprint256: x.fingerprint256,
  };
}

/** The first certificate of a PEM file (a client certificate the bot presents, say), and its expiry. */
export function readPemCertFile(path: string, now: Date = new Date()): CertReading {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    return { ok: false, error: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  try {
    const cert = infoOf(new X509Certificate(pem));
    return { ok: true, cert, expiry: classifyExpiry(cert, now) };
  } catch (err) {
    return { ok: false, error: `${path} holds no PEM certificate (${(err as Error).message})` };
  }
}

export interface HandshakeOptions {
  timeoutMs?: number;
  /** The TLS server name to ask for (SNI); by default the host when it is a name, none for an IP. */
  servername?: string;
  /** A client certificate to present, for servers that insist on one before they finish the handshake (etcd with client-cert-auth under TLS 1.2). */
  clientCert?: { cert: Buffer; key: Buffer };
  /** A CA to check the chain and name against; the answer is reported, never enforced. */
  ca?: Buffer;
  /** The client certificate and CA made into a context once, for many handshakes (instead of clientCert and ca). */
  secureContext?: SecureContext;
  now?: Date;
}

/**
 * One context, no CA and no client certificate, for every handshake that brings
 * neither: building one per connection (what tls.connect does when given none)
 * costs about a quarter of a reading's CPU, and `/etcd status` reads a dozen.
 */
let plainContext: SecureContext | undefined;
const plain = () => (plainContext ??= createSecureContext({}));

/**
 * Reads the certificate a TLS server presents, from a real handshake. The
 * handshake does not verify the server (rejectUnauthorized: false) because the
 * point is to read a certificate that may be expired or otherwise invalid, which a
 * verifying client would refuse before showing it; nothing is sent over the
 * connection, which is closed as soon as the handshake is done, so nothing is
 * entrusted to an unverified peer. With a CA given, whether it would verify is
 * reported beside it.
 */
export function readServingCert(host: string, port: number, opts: HandshakeOptions = {}): Promise<CertReading> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: CertReading) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(r);
    };
    const socket = connect({
      host,
      port,
      servername: opts.servername ?? (isIP(host) ? undefined : host),
      rejectUnauthorized: false,
      ...(opts.secureContext
        ? { secureContext: opts.secureContext }
        : opts.ca || opts.clientCert
          ? { ca: opts.ca, cert: opts.clientCert?.cert, key: opts.clientCert?.key }
          : { secureContext: plain() }),
    });
    socket.setTimeout(timeoutMs, () => finish({ ok: false, error: `no TLS handshake with ${where} within ${timeoutMs / 1000} s` }));
    socket.once('secureConnect', () => {
      const x = socket.getPeerX509Certificate();
      if (!x) return finish({ ok: false, error: `${where} presented no certificate` });
      const cert = infoOf(x);
      const reading: CertReading = { ok: true, cert, expiry: classifyExpiry(cert, opts.now ?? new Date()) };
      if (opts.ca || opts.secureContext) reading.untrusted = socket.authorized ? null : String(socket.authorizationError ?? 'not trusted');
      finish(reading);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const reason =
        err.code === 'ECONNREFUSED'
          ? `connection refused (${where})`
          : err.code === 'ECONNRESET'
            ? `${where} closed the connection during the handshake`
            : `TLS handshake with ${where} failed: ${err.message}`;
      finish({ ok: false, error: reason });
    });
  });
}
