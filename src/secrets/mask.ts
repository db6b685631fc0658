/**
 * The one function that keeps secrets out of everything the bot writes: chat
 * messages and threads, the timeline and its export, and the logs. It masks the
 * bot's own secrets (registered at start) and anything shaped like a Slack token
 * or a private-key block, wherever it came from (a user pasting one into a note).
 */

export const MASK = '[secret masked]';

// Slack tokens: bot/user/app/config/refresh (xoxb-, xoxp-, xoxa-, xoxo-, xoxs-, xoxr-, xoxe.xoxp-…) and app-level (xapp-…).
// The tail takes `_` too: a token-shaped string with one must not leave its end showing.
const SLACK_TOKEN = /\b(?:xox[abposre](?:\.xox[a-z])?-[A-Za-z0-9_-]{6,}|xapp-[A-Za-z0-9_-]{6,})/g;
// A private-key block, also when it was cut short (a note is clipped) or its newlines were
// escaped (a JSON log line): from BEGIN to the matching END, or to the end of the text.
const PRIVATE_KEY = /-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY-----|[\s\S]*$)/g;
// Secrets shorter than this are not masked by value: masking "abc" everywhere would garble text.
const MIN_KNOWN = 8;

const known = new Set<string>();

/** Adds this process's own secrets (tokens, signing secret, HMAC key, Redis password) to what is masked. */
export function registerSecrets(...values: (string | undefined | null)[]): void {
  for (const v of values) if (v && v.length >= MIN_KNOWN) known.add(v);
}

/** Masks every known secret and every token- or key-shaped string in `text`. */
export function maskSecrets(text: string): string {
  let out = text;
  if (out.includes('PRIVATE KEY-----')) out = out.replace(PRIVATE_KEY, `${MASK} (private key)`);
  out = out.replace(SLACK_TOKEN, MASK);
  // Longest first, so a secret that contains another is masked whole.
  for (const s of [...known].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join(MASK);
  return out;
}

/** Masks every string inside a message (text, blocks, attachments), leaving its shape as it was. */
export function maskDeep<T>(value: T): T {
  if (typeof value === 'string') return maskSecrets(value) as T;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v);
    return out as T;
  }
  return value;
}
