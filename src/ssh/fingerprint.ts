import { createHash } from 'node:crypto';

/** The fingerprint OpenSSH prints for a host key (`ssh-keygen -lf`): SHA256 of the key blob, base64 without padding. */
export function opensshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}
