/**
 * The host and port a URL points at: the brackets of an IPv6 literal taken
 * off, the scheme's default port filled in where none is written (80 for
 * http:, 443 otherwise), and whether it speaks TLS. null when it is no URL.
 */
export function hostPortOf(url: string): { host: string; port: number; https: boolean } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (u.protocol === 'http:' ? 80 : 443)), https: u.protocol === 'https:' };
}
