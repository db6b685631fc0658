import { approvableRows, KUBE_NAME, layoutRows, REVIEW_ID, rowPurpose, type CsrClick, type CsrOutcome, type CsrReview, type CsrRow } from '../csr/review.js';
import { escapeMrkdwn } from './escape.js';
import type { SlackMessage } from './status-message.js';

/** Keeps a text within `max` characters, saying how much was cut; the note counts toward the limit. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = (n: number) => `… (${n} more characters)`;
  const keep = max - note(text.length).length;
  return `${text.slice(0, keep)}${note(text.length - keep)}`;
}

export const CSR_APPROVE_ACTION = 'medic_csr_approve';
export const CSR_DENY_ACTION = 'medic_csr_deny';
export const CSR_APPROVE_ALL_ACTION = 'medic_csr_approve_all';

export type { CsrClick };

export function encodeCsrClick(c: CsrClick): string {
  return 'all' in c ? JSON.stringify({ r: c.reviewId, a: c.count }) : JSON.stringify({ r: c.reviewId, n: c.name, u: c.uid, h: c.hash });
}

/** Parses a CSR button's value; anything that is not exactly what the bot put there is refused (null). */
export function decodeCsrClick(value: unknown): CsrClick | null {
  if (typeof value !== 'string' || value.length > 600) return null;
  try {
    const o = JSON.parse(value) as { r?: unknown; n?: unknown; u?: unknown; h?: unknown; a?: unknown };
    if (typeof o.r !== 'string' || !REVIEW_ID.test(o.r)) return null;
    if (o.a !== undefined) {
      if (typeof o.a !== 'number' || !Number.isInteger(o.a) || o.a < 1 || o.a > 10_000 || o.n !== undefined) return null;
      return { reviewId: o.r, all: true, count: o.a };
    }
    if (typeof o.n !== 'string' || !KUBE_NAME.test(o.n)) return null;
    if (typeof o.u !== 'string' || !/^[0-9a-f-]{1,64}$/.test(o.u)) return null;
    if (typeof o.h !== 'string' || !/^[0-9a-f]{16}$/.test(o.h)) return null;
    return { reviewId: o.r, name: o.n, uid: o.u, hash: o.h };
  } catch {
    return null;
  }
}

const SECTION_MAX = 3000;
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
/** Text from the API (a requestor, a CN, a SAN) shown as code: inert in mrkdwn, no backtick to break out with. */
export const code = (s: string) => `\`${escapeMrkdwn(s.replace(/`/g, "'").slice(0, 200)) || ' '}\``;
const plain = (s: string) => escapeMrkdwn(s.replace(/`/g, "'"));
const hhmmss = (iso: string) => `${iso.slice(11, 19)}Z`;

/** "45s", "12m", "3h", "2d". */
export function age(createdAt: string | undefined, now: Date): string {
  if (!createdAt) return 'age unknown';
  const s = Math.max(0, Math.floor((now.getTime() - Date.parse(createdAt)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 2 * 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** A decision recorded by etcd-medic names a Slack user ("Slack user U123"): shown as a mention. */
export function mentionDeciders(text: string): string {
  return plain(text).replace(/Slack user (U[A-Z0-9]{2,20})/g, '<@$1>');
}

export function outcomeLine(o: CsrOutcome): string {
  switch (o.state) {
    case 'approved':
      return `:white_check_mark: *Approved* by <@${o.by}> at ${hhmmss(o.at)}${o.text ? ` (${plain(o.text)})` : ''}`;
    case 'denied':
      return `:no_entry_sign: *Denied* by <@${o.by}> at ${hhmmss(o.at)}`;
    case 'decided-elsewhere':
      return `:information_source: ${mentionDeciders(o.text ?? 'decided by someone else')}`;
    case 'gone':
      return `:ghost: ${plain(o.text ?? 'deleted since it was shown')}`;
    case 'changed':
      return `:warning: ${plain(o.text ?? 'changed since it was shown')}: \`/etcd csr\` shows it as it is now`;
  }
}

function requestText(r: CsrRow): string {
  if (!r.request.ok) return `:x: the request does not decode: ${plain(r.request.error)}`;
  const q = r.request;
  const sans = [...q.dns.map((d) => `DNS ${code(d)}`), ...q.ips.map((i) => `IP ${code(i)}`), ...q.other.map((o) => code(o))];
  return [`CN ${code(q.cn ?? '(none)')}`, `O ${q.o.length ? q.o.map(code).join(', ') : '(none)'}`, `SANs ${sans.length ? sans.join(', ') : 'none'}`, `key ${plain(q.key)}`].join(' · ');
}

function requestorText(r: CsrRow): string {
  return `${code(r.requestor.user || '(unknown)')}${r.requestor.groups.length ? ` (groups ${r.requestor.groups.map(code).join(', ')})` : ''}`;
}

function verdictText(r: CsrRow): string {
  if (r.verdict.pass) return ':white_check_mark: passes policy';
  return `:warning: *FLAGGED*:\n${r.verdict.reasons.map((x) => `• ${plain(x)}`).join('\n')}`;
}

/** The full review of one CSR: everything a reviewer needs to decide, and what became of it. */
export function csrRowText(r: CsrRow, outcome: CsrOutcome | undefined, now: Date): string {
  const head = `${outcome ? '' : r.verdict.pass ? ':large_green_circle: ' : ':warning: '}*${plain(r.name)}* · ${rowPurpose(r)} · ${age(r.createdAt, now)} old`;
  const lines = [
    head,
    `*Requested by* ${requestorText(r)}`,
    `*Signer* ${code(r.signer || '(none)')} · *usages* ${r.usages.length ? r.usages.map(plain).join(', ') : 'none'}`,
    `*Request:* ${requestText(r)}`,
    verdictText(r),
  ];
  if (outcome) lines.push(outcomeLine(outcome));
  return clip(lines.join('\n'), SECTION_MAX);
}

/** One line of a CSR beyond the detailed ones. */
export function csrCompactLine(r: CsrRow, outcome: CsrOutcome | undefined, now: Date): string {
  const verdict = r.verdict.pass ? 'passes' : `FLAGGED: ${plain(r.verdict.reasons[0] ?? '')}`;
  const line = `• *${plain(r.name)}* · ${rowPurpose(r)} · by ${code(r.requestor.user || '(unknown)')} · ${age(r.createdAt, now)} · ${verdict}${outcome ? ` · ${outcomeLine(outcome)}` : ''}`;
  return line.length > 200 ? `${line.slice(0, 197)}…` : line;
}

function rowButtons(review: CsrReview, r: CsrRow, index: number): Record<string, unknown> {
  const value = encodeCsrClick({ reviewId: review.id, name: r.name, uid: r.uid, hash: r.requestHash });
  const approve: Record<string, unknown> = {
    type: 'button',
    action_id: CSR_APPROVE_ACTION,
    text: { type: 'plain_text', text: clip(r.verdict.pass ? `Approve ${r.name}` : `Approve FLAGGED ${r.name}`, 75) },
    value,
  };
  if (r.verdict.pass) approve.style = 'primary';
  else {
    // A flagged CSR is approved one by one, knowingly: the dialog repeats why it is flagged.
    approve.style = 'danger';
    approve.confirm = {
      title: { type: 'plain_text', text: 'Approve a FLAGGED CSR?' },
      text: { type: 'mrkdwn', text: clip(`${plain(r.name)} does not pass policy: ${r.verdict.reasons.map(plain).join('; ')}`, 300) },
      confirm: { type: 'plain_text', text: 'Approve anyway' },
      deny: { type: 'plain_text', text: 'Back' },
    };
  }
  const deny = {
    type: 'button',
    action_id: CSR_DENY_ACTION,
    text: { type: 'plain_text', text: clip(`Deny ${r.name}`, 75) },
    value,
    confirm: {
      title: { type: 'plain_text', text: 'Deny this CSR?' },
      text: { type: 'mrkdwn', text: clip(`${plain(r.name)} (${rowPurpose(r)}) is denied for good; its requester has to file a new one.`, 300) },
      confirm: { type: 'plain_text', text: 'Deny' },
      deny: { type: 'plain_text', text: 'Back' },
    },
  };
  return { type: 'actions', block_id: `csr-${review.id}-${index}`, elements: [approve, deny] };
}

/** Lines into as few sections as fit (each under Slack's 3,000 characters). */
function sections(lines: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let chunk = '';
  for (const l of lines) {
    if (chunk && chunk.length + l.length + 1 > 2900) {
      out.push({ type: 'section', text: mrkdwn(chunk) });
      chunk = '';
    }
    chunk = chunk ? `${chunk}\n${l}` : l;
  }
  if (chunk) out.push({ type: 'section', text: mrkdwn(chunk) });
  return out;
}

/**
 * The message of a CSR review: a header, a summary, every CSR with its
 * review and its own Approve / Deny (flagged ones first), one button that
 * approves all those that pass policy, and what became of each row since.
 * Many CSRs: the first ones in full, then one line each, then only their
 * names, within Block Kit's limits (50 blocks, 3,000 characters a section).
 */
export function renderCsrReview(review: CsrReview, outcomes: Record<string, CsrOutcome>, now: Date): SlackMessage {
  const rows = review.rows;
  const layout = layoutRows(rows);
  const pending = rows.length + review.more.length;
  const flagged = rows.filter((r) => !r.verdict.pass).length;
  const decided = rows.filter((r) => outcomes[r.name]).length;
  const approvable = approvableRows(review, outcomes);

  const blocks: Record<string, unknown>[] = [{ type: 'header', text: { type: 'plain_text', text: clip(review.title, 150) } }];
  if (pending === 0) {
    blocks.push({ type: 'section', text: mrkdwn(`:white_check_mark: No pending CSRs in *${plain(review.cluster)}*: nothing waits for approval.`) });
  } else {
    const parts = [`*${pending}* pending when drawn: ${rows.length - flagged} pass policy, ${flagged ? `*${flagged} FLAGGED*` : 'none flagged'}`];
    if (decided) parts.push(`${decided} decided since`);
    const how = 'Approve or deny each with its buttons, or approve at once all that pass policy (each is checked again first). A flagged CSR is approved only with its own button.';
    blocks.push({ type: 'section', text: mrkdwn(clip(`${parts.join(' · ')}.\n${how}`, SECTION_MAX)) });
  }
  blocks.push({ type: 'divider' });

  layout.detailed.forEach((i) => {
    const r = rows[i]!;
    blocks.push({ type: 'section', text: mrkdwn(csrRowText(r, outcomes[r.name], now)) });
    if (!outcomes[r.name]) blocks.push(rowButtons(review, r, i));
  });
  if (layout.compact.length) {
    blocks.push(...sections([`*${layout.compact.length} more, one line each* (approve the ones that pass with the button below, or \`/etcd csr approve <name>\`):`, ...layout.compact.map((i) => csrCompactLine(rows[i]!, outcomes[rows[i]!.name], now))]));
  }
  const hiddenNames = [...layout.hidden.map((i) => rows[i]!.name), ...review.more];
  if (hiddenNames.length) {
    const names = clip(hiddenNames.map(plain).join(', '), 2500);
    blocks.push({ type: 'section', text: mrkdwn(`*${hiddenNames.length} more pending, not in this message:* ${names}\nDecide the ones above, then \`/etcd csr\` shows the next ones; \`/etcd csr approve <name>\` decides one by name.`) });
  }
  if (approvable.length) {
    const names = approvable.map((r) => r.name).join(', ');
    blocks.push({
      type: 'actions',
      block_id: `csrall-${review.id}-${approvable.length}`,
      elements: [
        {
          type: 'button',
          action_id: CSR_APPROVE_ALL_ACTION,
          style: 'primary',
          text: { type: 'plain_text', text: clip(`Approve all ${approvable.length} that pass policy`, 75) },
          value: encodeCsrClick({ reviewId: review.id, all: true, count: approvable.length }),
          confirm: {
            title: { type: 'plain_text', text: `Approve ${approvable.length} CSR${approvable.length > 1 ? 's' : ''}?` },
            text: { type: 'mrkdwn', text: clip(`Each is read again and approved only if it is unchanged and still passes policy: ${plain(names)}`, 300) },
            confirm: { type: 'plain_text', text: `Approve ${approvable.length}` },
            deny: { type: 'plain_text', text: 'Back' },
          },
        },
      ],
    });
  }
  const asked = review.by === 'bot' ? 'seen by the incident watch' : `asked by <@${review.by}>`;
  blocks.push({ type: 'context', elements: [mrkdwn(clip(`cluster ${plain(review.cluster)} · drawn ${hhmmss(review.createdAt)} · ${asked} · review ${review.id}`, 2000))] });

  const text = pending === 0 ? `No pending CSRs in ${review.cluster}` : `${review.title}: ${pending} pending, ${flagged} flagged`;
  return { text: clip(text, 3000), blocks };
}
