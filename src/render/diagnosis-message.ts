import type { Diagnosis } from '../status/diagnose.js';
import { commandButton } from './command-button.js';
import { escapeMrkdwn } from './escape.js';
import { clip, type SlackMessage } from './status-message.js';

const MAX_BLOCKS = 50;
const SECTION_MAX = 3000;

/** The line a person reads for one diagnosis: what to do, then the evidence. */
export function diagnosisLine(d: Diagnosis, n: number): string {
  const how = d.offer ? '' : d.notYet ? ' _(after the above)_' : ' _(by hand)_';
  return `*${n}. ${escapeMrkdwn(d.title)}*${how}\n${escapeMrkdwn(d.evidence)}`;
}

/**
 * One section per diagnosis, safest first, each with its button beside it: the
 * click runs the command the button names as whoever clicks (role checks and
 * approvals as when typed). At most `room` blocks; past that the last one says
 * how many more there are.
 */
export function diagnosisBlocks(ds: Diagnosis[], cluster: string, room = MAX_BLOCKS): Record<string, unknown>[] {
  if (ds.length === 0 || room < 1) return [];
  const shown = ds.length <= room ? ds : ds.slice(0, room - 1);
  const blocks = shown.map((d, i) => {
    const head = i === 0 ? `:stethoscope: *Diagnosis*${ds.length > 1 ? ' (safest first)' : ''}\n` : '';
    const block: Record<string, unknown> = {
      type: 'section',
      block_id: `diagnosis-${cluster}-${i}`.slice(0, 255),
      text: { type: 'mrkdwn', text: clip(`${head}${diagnosisLine(d, i + 1)}`, SECTION_MAX) },
    };
    if (d.offer) block.accessory = commandButton(d.offer);
    return block;
  });
  if (shown.length < ds.length) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `… and ${ds.length - shown.length} more: \`/etcd status\` after the first is fixed.` } });
  return blocks;
}

/**
 * The status message with the diagnosis added before its closing context line
 * (the footer stays last), within Slack's 50 blocks; the notification text names
 * the first diagnosis.
 */
export function withDiagnosis(msg: SlackMessage, ds: Diagnosis[], cluster: string): SlackMessage {
  if (ds.length === 0) return msg;
  const blocks = [...msg.blocks];
  const last = blocks.at(-1);
  const tail = last && last.type === 'context' ? [blocks.pop()!] : [];
  const added = diagnosisBlocks(ds, cluster, MAX_BLOCKS - blocks.length - tail.length);
  const text = clip(`${msg.text} Diagnosis: ${ds[0]!.title}${ds.length > 1 ? ` (+${ds.length - 1} more)` : ''}.`, 3000);
  return { text, blocks: [...blocks, ...added, ...tail] };
}
