import type { CommandOffer } from '../runbook/types.js';
import type { ReferenceLook } from '../worker/references.js';
import { commandButtonBlock } from './command-button.js';
import { escapeMrkdwn } from './escape.js';
import { clip, type SlackMessage } from './status-message.js';

const SECTION_MAX = 3000;
/** Blocks kept for the header, summary, divider, advice, button and context. */
const ROW_SECTIONS_MAX = 50 - 7;
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
/** File contents come from the hosts: inert in mrkdwn, kept out of code spans' delimiters. */
const inert = (s: string) => escapeMrkdwn(s).replace(/`/g, "'");
const list = (xs: string[]) => xs.map((x) => `\`${inert(x)}\``).join(', ');

/** One line per file on a master. */
export function referenceLine(l: ReferenceLook): string {
  const where = `*${l.member}* \`${inert(l.ref.path)}\` (${l.ref.what})`;
  switch (l.state) {
    case 'drift': {
      const parts = [l.drift.stale.length ? `names ${list(l.drift.stale)}, which ${l.drift.stale.length === 1 ? 'is' : 'are'} not in the cluster` : '', l.drift.missing.length ? `misses ${list(l.drift.missing)}` : ''].filter(Boolean);
      return `:warning: ${where}: ${parts.join('; ')}`;
    }
    case 'ok':
      return `:white_check_mark: ${where}: names every member`;
    case 'absent':
      return `:heavy_minus_sign: ${where}: no such file on this host`;
    case 'unset':
      return `:heavy_minus_sign: ${where}: the file does not set it`;
    case 'unreadable':
      return `:grey_question: ${where}: could not be read: ${inert(l.error.slice(0, 300))}`;
  }
}

/** The looks that a rewrite can fix (files the bot may change and that disagree with the member list). */
export function fixable(looks: ReferenceLook[]): ReferenceLook[] {
  return looks.filter((l) => l.state === 'drift' && l.ref.rewrite);
}

/** Sections of joined lines, as few as fit. */
function sections(lines: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let chunk = '';
  for (const l of lines) {
    if (chunk && chunk.length + l.length + 1 > SECTION_MAX) {
      out.push({ type: 'section', text: mrkdwn(chunk) });
      chunk = '';
    }
    chunk = chunk ? `${chunk}\n${l}` : clip(l, SECTION_MAX);
  }
  if (chunk) out.push({ type: 'section', text: mrkdwn(chunk) });
  return out.slice(0, ROW_SECTIONS_MAX);
}

/**
 * "Files on the masters that name etcd's members": what still names a removed
 * member or misses a new one, host by host, with a button to fix what the bot
 * may rewrite (behind its own plan and approval).
 */
export function renderReferences(cluster: string, looks: ReferenceLook[], opts: { footer: string; fix?: CommandOffer }): SlackMessage {
  const drifting = looks.filter((l) => l.state === 'drift');
  const unread = looks.filter((l) => l.state === 'unreadable');
  const summary = looks.length === 0
    ? ':large_green_circle: nothing on these masters names etcd\'s members besides etcd itself'
    : drifting.length
      ? `:large_orange_circle: *${drifting.length} file${drifting.length === 1 ? '' : 's'} disagree${drifting.length === 1 ? 's' : ''} with the member list*${unread.length ? `, ${unread.length} could not be read` : ''}`
      : unread.length
        ? `:white_circle: *${unread.length} file${unread.length === 1 ? '' : 's'} could not be read*; the others name every member`
        : ':large_green_circle: *every file names every member, and nothing else*';
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`Files naming etcd's members on ${cluster}'s masters`, 150) } },
    { type: 'section', text: mrkdwn(summary) },
  ];
  if (looks.length) blocks.push({ type: 'divider' }, ...sections(looks.map(referenceLine)));
  const manual = drifting.flatMap((l) => (l.state === 'drift' && !l.ref.rewrite ? [l] : []));
  if (manual.length) blocks.push({ type: 'section', text: mrkdwn(clip(`*By hand:* ${manual.map((l) => `on ${l.member}, set ${l.ref.what} in \`${inert(l.ref.path)}\` to ${list(l.drift.wanted)}${l.ref.apply ? `, then ${l.ref.apply.text}` : ''}`).join('; ')}`, SECTION_MAX)) });
  if (opts.fix && fixable(looks).length) blocks.push(commandButtonBlock(opts.fix, `references-fix-${cluster}`));
  blocks.push({ type: 'context', elements: [mrkdwn(clip(`read over SSH, compared with the member list · ${opts.footer}`, 2000))] });
  return { text: clip(`Files naming etcd's members on ${cluster}: ${summary.replace(/:[a-z_]+: |\*/g, '')}`, 3000), blocks };
}
