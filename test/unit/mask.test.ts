import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { MASK, maskDeep, maskSecrets, registerSecrets } from '../../src/secrets/mask.js';

const KEY_BODY = 'MIIEowIBAAKCAQEAzv3Xf1lJqJ7e9y8b3cD2N4k5Q6rS7tU8vW9xY0zA1bC2dE3fG4hI5jK6';
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${KEY_BODY}\n${KEY_BODY.split('').reverse().join('')}\n-----END RSA PRIVATE KEY-----`;

describe('masking secrets', () => {
  it('masks anything shaped like a Slack token', () => {
    for (const t of ['xoxb-1234567890-0987654321-AbCdEfGhIjKl', 'xoxp-12-34-56-abcdef', 'xoxa-2-abcdefgh', 'xoxs-abc-defghij', 'xoxr-abcdefgh1', 'xoxo-abcdefgh', 'xapp-1-A0123-456-abcdef', 'xoxb-17645-9a_bC-dE_f-_k']) {
      expect(maskSecrets(`token ${t}, then more`)).toBe(`token ${MASK}, then more`);
    }
    expect(maskSecrets('xoxb is a word, xapp too')).toBe('xoxb is a word, xapp too');
  });

  it('masks a private-key block whole: with newlines, with spaces for newlines (a slash command), JSON-escaped (a log line), or cut short', () => {
    const spaced = PEM.replace(/\n/g, ' ');
    const escaped = JSON.stringify(PEM).slice(1, -1);
    for (const form of [PEM, spaced, escaped]) {
      const out = maskSecrets(`before ${form} after`);
      expect(out).toBe(`before ${MASK} (private key) after`);
    }
    expect(maskSecrets(`note: ${PEM.slice(0, 80)}`)).toBe(`note: ${MASK} (private key)`);
    expect(maskSecrets('-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA')).not.toContain('b3BlbnNzaC1rZXkt');
    expect(maskSecrets('-----BEGIN CERTIFICATE----- MIIB')).toBe('-----BEGIN CERTIFICATE----- MIIB');
  });

  it("masks the process's own secrets by value, but not short strings", () => {
    registerSecrets('signing-secret-0123456789', 'short', undefined);
    expect(maskSecrets('sig=signing-secret-0123456789;')).toBe(`sig=${MASK};`);
    expect(maskSecrets('a short text')).toBe('a short text');
  });

  it('masks every string inside a message and keeps its shape', () => {
    const msg = { text: 'xoxb-1234567890-abcdef', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `key ${PEM}` } }], n: 3 };
    expect(maskDeep(msg)).toEqual({ text: MASK, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `key ${MASK} (private key)` } }], n: 3 });
  });

  it('is applied to every log line, at debug too', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
    const log = createLogger('debug', sink);
    log.debug({ body: { text: `note xoxb-99999999-abcdefgh ${PEM}` } }, 'request');
    log.error({ err: 'failed with signing-secret-0123456789' }, 'oops');
    const all = lines.join('');
    expect(all).not.toContain('xoxb-99999999');
    expect(all).not.toContain(KEY_BODY.slice(0, 24));
    expect(all).not.toContain('signing-secret-0123456789');
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
  });
});
