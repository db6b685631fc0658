import { formatBytes, type MemberRow, type StatusReport, type Verdict } from '../status/assess.js';

export interface SlackMessage {
  text: string; // notification and screen-reader fallback
  blocks: Record<string, unknown>[];
}

const VERDICT_ICON: Record<Verdict, string> = {
  HEALTHY: ':large_green_circle:',
  DEGRADED: ':large_orange_circle:',
  QUORUM_LOST: ':red_circle:',
  UNREACHABLE: ':black_circle:',
};

const verdictLabel = (r: StatusReport) =>
  r.verdict === 'DEGRADED' ? `DEGRADED (can lose ${r.tolerance} more)` : r.verdict.replace('_', ' ');

const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
const SECTION_MAX = 3000;

/** Keeps a text under Slack's limit, saying that something was cut rather than silently dropping it. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  // The note's length grows with the count it names: leave room for the longest it can be, so the result stays within max.
  const note = (n: number) => `\n… (cut, ${n} more characters)`;
  const keep = max - note(text.length).length;
  return keep > 0 ? `${text.slice(0, keep)}${note(text.length - keep)}` : text.slice(0, max);
}

/** One member's row; `alarmsRead: false` while the alarm list has not come back (a progress message). */
export function memberLine(m: MemberRow, opts: { alarmsRead?: boolean } = {}): string {
  const id = m.idHex ? `\`${m.idHex}\`` : '`?`';
  const role = m.learner ? 'learner' : 'voter';
  // A leader that does not answer is only the last one its peers saw: say so rather than star it.
  const leaderMark = m.isLeader ? (m.status ? ' · *leader*' : ' · *leader* (last seen by its peers, not answering)') : '';
  const head = `${m.isLeader && m.status ? ':star: ' : ''}*${m.name}* ${id} · ${role} · ${m.started ? 'started' : 'unstarted'}${leaderMark}`;
  const urls = `peer ${m.peerURLs.join(', ') || '—'} · client ${m.clientURLs.join(', ') || '—'}`;
  if (!m.status) {
    return `${head}\n${urls}\n:x: *unreachable* (${m.error?.kind ?? 'error'}): ${m.error?.message ?? 'no answer'}`;
  }
  const s = m.status;
  const figures = `term ${s.raftTerm} · index ${s.raftIndex} · applied ${s.raftAppliedIndex} · db ${formatBytes(s.dbSize)} (in use ${formatBytes(s.dbSizeInUse)}) · v${s.version}`;
  const alarms = opts.alarmsRead === false ? 'alarms: not read yet' : m.alarms.length ? `:rotating_light: alarms: ${m.alarms.join(', ')}` : 'alarms: none';
  const errors = s.errors.length ? `\n:warning: ${s.errors.join('; ')}` : '';
  return `${head}\n${urls}\n:white_check_mark: reachable · ${figures}\n${alarms}${errors}`;
}

/** One message every responder can read: verdict first, a row per member, then warnings. */
/**
 * One section per member row while `budget` blocks allow (Block Kit takes 50 per message); beyond that
 * rows share sections, each within a section's text limit, so a 7- or 60-member cluster still fits.
 */
export function rowSections(lines: string[], budget: number): Record<string, unknown>[] {
  if (lines.length <= budget) return lines.map((l) => ({ type: 'section', text: mrkdwn(clip(l, SECTION_MAX)) }));
  const out: Record<string, unknown>[] = [];
  let chunk = '';
  for (const l of lines) {
    if (chunk && chunk.length + l.length + 2 > SECTION_MAX) {
      out.push({ type: 'section', text: mrkdwn(chunk) });
      chunk = '';
    }
    chunk = chunk ? `${chunk}\n\n${l}` : clip(l, SECTION_MAX);
  }
  if (chunk) out.push({ type: 'section', text: mrkdwn(chunk) });
  return out;
}

export function renderStatus(r: StatusReport, footer: string): SlackMessage {
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`etcd ${r.cluster}: ${verdictLabel(r)}`, 150) } },
    {
      type: 'section',
      text: mrkdwn(clip(`${VERDICT_ICON[r.verdict]} *${verdictLabel(r)}*: ${r.summary}\n*Next:* ${r.next}`, SECTION_MAX)),
    },
    { type: 'divider' },
  ];

  blocks.push(...rowSections(r.members.map((m) => memberLine(m)), 50 - blocks.length - 2));

  if (r.warnings.length) {
    blocks.push({ type: 'section', text: mrkdwn(clip(`*Warnings*\n${r.warnings.map((w) => `• ${w}`).join('\n')}`, SECTION_MAX)) });
  }
  const quorumLine = `quorum ${r.quorum} of ${r.voters} voters · ${r.healthyVoters} up`;
  blocks.push({
    type: 'context',
    elements: [mrkdwn(clip(`${quorumLine} · cluster ID ${r.clusterIdHex ?? '?'} · checked ${r.at.toISOString()} in ${r.tookMs} ms · ${footer}`, 2000))],
  });

  const text = `etcd ${r.cluster}: ${verdictLabel(r)}. ${r.summary}`;
  return { text: clip(text, 3000), blocks };
}
