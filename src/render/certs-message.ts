import { countReadings, notYetValid, targetWhat, targetWhere, type CertCheck } from '../certs/check.js';
import { WARN_DAYS } from '../certs/expiry.js';
import type { CertTargetKind, TargetReading } from '../certs/targets.js';
import { escapeMrkdwn } from './escape.js';
import { clip, type SlackMessage } from './status-message.js';

const SECTION_MAX = 3000;
/** Blocks kept for the header, summary, divider, notes, advice and context: the rest may carry rows. */
const ROW_SECTIONS_MAX = 50 - 8;
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
const isoDay = (d: Date) => d.toISOString().slice(0, 10);
const days = (n: number) => `${n} day${n === 1 ? '' : 's'}`;
/** Certificate text comes from whoever made the certificate: inert in mrkdwn, and kept out of the code span's delimiters. */
const inert = (s: string) => escapeMrkdwn(s).replace(/`/g, "'");

export function summaryOf(c: CertCheck): { icon: string; line: string } {
  const n = countReadings(c.readings, c.at);
  const total = c.readings.length;
  const bad: string[] = [];
  if (n.expired) bad.push(`${n.expired} expired`);
  if (n.notYetValid) bad.push(`${n.notYetValid} not valid yet`);
  if (n.warn) bad.push(`${n.warn} within ${WARN_DAYS} days`);
  const unread = n.unreadable ? `${n.unreadable} could not be read` : '';
  let line: string;
  if (total === 0) line = 'no certificate to check';
  else if (bad.length) line = [`*${bad.join(', ')}*`, unread, n.ok ? `${n.ok} valid for more than ${WARN_DAYS} days` : ''].filter(Boolean).join(', ');
  else if (n.unreadable === total) line = `*none of the ${total} certificates could be read*`;
  else if (n.unreadable) line = `*all ${n.ok} certificates read are valid for more than ${WARN_DAYS} days*, ${unread}`;
  else line = `*all ${total} certificates valid for more than ${WARN_DAYS} days*`;
  const icon = n.expired || n.notYetValid ? ':red_circle:' : n.warn ? ':large_orange_circle:' : n.unreadable ? ':white_circle:' : ':large_green_circle:';
  return { icon, line };
}

/** One row: what it is, where it was read, its subject, when it ends and how far that is. */
export function certRow(r: TargetReading, now: Date): string {
  const head = `*${targetWhat(r.target)}* · \`${inert(targetWhere(r.target))}\``;
  if (!r.ok) return `:black_circle: ${head} · could not be read: ${inert(r.error)}`;
  const end = isoDay(r.cert.notAfter);
  let when: string;
  if (notYetValid(r, now)) when = `*not valid before ${r.cert.notBefore.toISOString()}* · expires ${end}`;
  else if (r.expiry.level === 'error') {
    const ago = Math.floor((now.getTime() - r.cert.notAfter.getTime()) / 86_400_000);
    when = `expired ${end} · *${ago === 0 ? 'today' : `${days(ago)} ago`}*`;
  } else {
    const left = r.expiry.daysLeft === 0 ? 'less than a day left' : `${days(r.expiry.daysLeft)} left`;
    when = `expires ${end} · ${r.expiry.level === 'warn' ? `*${left}*` : left}`;
  }
  const icon = r.expiry.level === 'error' ? ':red_circle:' : r.expiry.level === 'warn' ? ':large_orange_circle:' : ':white_check_mark:';
  const trust = r.untrusted ? ` · :warning: not trusted by the etcd CA (${inert(r.untrusted)})` : '';
  return `${icon} ${head} · \`${inert(r.cert.subject) || 'no subject'}\` · ${when}${trust}`;
}

/** What to do about each kind of certificate that has ended or ends soon. The bot only reads them. */
export function certAdvice(c: CertCheck): string | null {
  const due = c.readings.filter((r) => r.ok && r.expiry.level !== 'ok');
  if (due.length === 0) return null;
  const kinds = new Set<CertTargetKind>(due.map((r) => r.target.kind));
  const hosts = (...of: CertTargetKind[]) =>
    [...new Set(due.filter((r) => of.includes(r.target.kind)).map((r) => (r.target.kind === 'bot-client' ? '' : (r.target.member ?? r.target.host))))].join(', ');
  const lines: string[] = [];
  if (kinds.has('etcd-client') || kinds.has('etcd-peer')) {
    // Per member, the kubeadm certificate names: etcd-server is the client URL's, etcd-peer the peer URL's.
    const perMember = new Map<string, string[]>();
    for (const r of due) {
      if (r.target.kind !== 'etcd-client' && r.target.kind !== 'etcd-peer') continue;
      const who = r.target.member ?? r.target.host;
      perMember.set(who, [...(perMember.get(who) ?? []), r.target.kind === 'etcd-client' ? 'etcd-server' : 'etcd-peer']);
    }
    const each = [...perMember].map(([who, cmds]) => `${inert(who)}: ${cmds.join(', ')}`).join('; ');
    lines.push(`• etcd: on each master, \`kubeadm certs renew\` the ones named (${each}), then restart its etcd static pod (move \`etcd.yaml\` out of the manifests dir and back). One member at a time, \`/etcd status\` healthy before the next.`);
  }
  if (kinds.has('kube-apiserver')) {
    lines.push(`• kube-apiserver (${hosts('kube-apiserver')}): \`kubeadm certs renew apiserver\` on each of those masters, then restart the kube-apiserver static pod the same way.`);
  }
  if (kinds.has('kubelet')) {
    lines.push(`• kubelet (${hosts('kubelet')}): with \`serverTLSBootstrap: true\` the kubelet asks for a new serving certificate through a CSR: approve it (\`/etcd csr\`); a self-signed one (\`/var/lib/kubelet/pki/kubelet.crt\`) is made again when the kubelet restarts without it.`);
  }
  if (kinds.has('bot-client')) {
    const file = due.find((r) => r.target.kind === 'bot-client')!.target;
    lines.push(`• the bot's etcd client certificate: issue a new one from the etcd CA, put it at \`${inert(targetWhere(file))}\` and restart the workers (\`kubeadm certs renew\` does not cover it).`);
  }
  lines.push('`kubeadm certs check-expiration` on a master lists every certificate kubeadm manages.');
  return `*What to do* (the bot reads certificates; it does not renew them: these are steps for someone with a shell on the master)\n${lines.join('\n')}`;
}

/** Rows into as few sections as fit, each within Slack's limit; past the block budget, a count of the rows left out. */
function rowSections(rows: string[]): Record<string, unknown>[] {
  const sections: { text: string; rows: number }[] = [];
  for (const row of rows.map((r) => clip(r, SECTION_MAX))) {
    const last = sections[sections.length - 1];
    if (last && last.text.length + row.length + 1 <= SECTION_MAX) {
      last.text += `\n${row}`;
      last.rows++;
    } else sections.push({ text: row, rows: 1 });
  }
  if (sections.length > ROW_SECTIONS_MAX) {
    const kept = sections.slice(0, ROW_SECTIONS_MAX - 1);
    const shown = kept.reduce((n, s) => n + s.rows, 0);
    kept.push({ text: `… and ${rows.length - shown} more rows not shown (the worst come first).`, rows: 0 });
    return kept.map((s) => ({ type: 'section', text: mrkdwn(s.text) }));
  }
  return sections.map((s) => ({ type: 'section', text: mrkdwn(s.text) }));
}

/** `/etcd certs`: a summary first, then a row per certificate, worst first, then what was not checked and what to do. */
export function renderCerts(c: CertCheck, opts: { footer: string; kubeconfigHint?: string }): SlackMessage {
  const { icon, line } = summaryOf(c);
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`Certificates of ${c.cluster}`, 150) } },
    { type: 'section', text: mrkdwn(clip(`${icon} ${line}`, SECTION_MAX)) },
    { type: 'divider' },
    ...rowSections(c.readings.map((r) => certRow(r, c.at))),
  ];
  const notes = c.notes.map((n) => `• ${inert(n)}${opts.kubeconfigHint && n.startsWith('kube-apiserver and kubelet') ? `. ${opts.kubeconfigHint}` : ''}`);
  if (notes.length) blocks.push({ type: 'section', text: mrkdwn(clip(`*Not checked*\n${notes.join('\n')}`, SECTION_MAX)) });
  const advice = certAdvice(c);
  if (advice) blocks.push({ type: 'section', text: mrkdwn(clip(advice, SECTION_MAX)) });
  blocks.push({
    type: 'context',
    elements: [mrkdwn(clip(`read from TLS handshakes at ${c.at.toISOString()} in ${c.tookMs} ms · warn at ${WARN_DAYS} days, error when expired · ${opts.footer}`, 2000))],
  });
  return { text: clip(`Certificates of ${c.cluster}: ${line.replace(/\*/g, '')}`, 3000), blocks };
}
