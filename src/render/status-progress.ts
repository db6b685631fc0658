import type { ProgressRow, StatusProgress } from '../status/progress.js';
import { clip, memberLine, rowSections, type SlackMessage } from './status-message.js';

const SECTION_MAX = 3000;
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });

/** "2 s", "1.5 s": the deadline as a person reads it. */
export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** "m2", "m2 and m3", "m2, m3 and m4". */
function names(list: string[]): string {
  return list.length <= 1 ? (list[0] ?? '') : `${list.slice(0, -1).join(', ')} and ${list.at(-1)}`;
}

function rowLine(r: ProgressRow, deadline: string): string {
  switch (r.state) {
    case 'answered':
      return `${memberLine(r.member, { alarmsRead: false })}\n${r.leaderHex ? `leader as ${r.name} sees it: \`${r.leaderHex}\`` : `${r.name} knows no leader`}`;
    case 'failed':
      return `*${r.name}* · client ${r.endpoint}\n:x: *unreachable* (${r.error.kind}): ${r.error.message}`;
    case 'waiting':
      return `:hourglass_flowing_sand: *${r.name}* · client ${r.endpoint}\nasked, no answer yet (deadline ${deadline})`;
  }
}

/**
 * The message `/etcd status` shows while members have not answered yet: what
 * each member that answered said, who is still asked and until when. No verdict,
 * no "Next": the same message is redrawn with the verdict once it is certain.
 */
export function renderStatusProgress(p: StatusProgress, footer: string): SlackMessage {
  const deadline = seconds(p.deadlineMs);
  const answered = p.rows.filter((r) => r.state === 'answered').map((r) => r.name);
  const failed = p.rows.filter((r) => r.state === 'failed').map((r) => r.name);
  const waitingText = p.waiting.length ? `waiting for ${names(p.waiting)} (deadline ${deadline})` : 'judging what the members said';
  const known = [
    answered.length ? `${names(answered)} answered` : 'no member has answered yet',
    ...(failed.length ? [`${names(failed)} could not be reached`] : []),
  ].join('; ');
  const summary = [
    `:hourglass_flowing_sand: *No verdict yet*: ${waitingText}. So far ${known}.`,
    ...(p.note ? [p.note] : []),
    'This message is redrawn with the verdict as soon as every member has answered or run out its deadline.',
  ].join('\n');

  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`etcd ${p.cluster}: checking…`, 150) } },
    { type: 'section', text: mrkdwn(clip(summary, SECTION_MAX)) },
    { type: 'divider' },
  ];
  blocks.push(...rowSections(p.rows.map((r) => rowLine(r, deadline)), 50 - blocks.length - 1));
  blocks.push({ type: 'context', elements: [mrkdwn(clip(`asking since ${p.startedAt.toISOString()} · ${footer}`, 2000))] });
  return { text: clip(`etcd ${p.cluster}: checking, ${waitingText}`, 3000), blocks };
}
