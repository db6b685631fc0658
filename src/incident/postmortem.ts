import type { ChainCheck } from './chain.js';
import type { Incident, TimelineEntry } from './store.js';

const who = (actor: string) => (actor === 'bot' || actor === 'schedule' ? actor : `<@${actor}>`);
const hms = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

function duration(fromIso: string, toIso: string): string {
  const s = Math.max(0, Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h} h ` : ''}${m ? `${m} min ` : ''}${s % 60} s`;
}

/**
 * The timeline as a postmortem draft in Markdown: times in UTC, durations, who
 * approved what, what the recovery cost in data, and whether the record is intact.
 */
export function renderPostmortem(inc: Incident, entries: TimelineEntry[], chain: ChainCheck, now: Date): string {
  const end = inc.closedAt ?? now.toISOString();
  const approvals = entries.filter((e) => e.kind === 'approval' || e.kind === 'rejection');
  const losses = entries.filter((e) => /Data loss:/.test(e.text)).map((e) => e.text.slice(e.text.indexOf('Data loss:')).split(/(?<=\.)\s/)[0]!);
  const runs = [...new Set(entries.filter((e) => e.runId).map((e) => e.runId!))];
  const lines = [
    `# Postmortem draft: ${inc.title}`,
    '',
    `- Incident: \`${inc.id}\` in <#${inc.channelId}>`,
    `- Opened: ${hms(inc.openedAt)} by ${who(inc.openedBy)}`,
    `- ${inc.closedAt ? `Closed: ${hms(inc.closedAt)} by ${who(inc.closedBy ?? '')}` : 'Still open'} (duration ${duration(inc.openedAt, end)})`,
    `- Runs: ${runs.length ? runs.map((r) => `\`${r}\``).join(', ') : 'none'}`,
    `- Record: ${chain.ok ? `${chain.count} entries, hash chain intact (head \`${chain.head.slice(0, 12)}\`: the incident thread's last checkpoint must name an entry of this chain)` : `**hash chain broken at entry ${chain.seq}: ${chain.reason}**`}`,
    '',
    '## Data loss',
    '',
    ...(losses.length ? losses.map((l) => `- ${l}`) : ['- No restore in this incident: no data lost by the recovery.']),
    '',
    '## Approvals',
    '',
    ...(approvals.length ? approvals.map((e) => `- ${hms(e.at)} ${who(e.actor)}: ${e.text}`) : ['- none']),
    '',
    '## Timeline (UTC)',
    '',
    '| time | +since open | who | what |',
    '| --- | --- | --- | --- |',
    ...entries.map((e) => `| ${hms(e.at)} | ${duration(inc.openedAt, e.at)} | ${who(e.actor)} | ${e.kind}: ${e.text.replace(/\|/g, '\\|').replace(/\n+/g, ' ⏎ ').slice(0, 600)} |`),
    '',
    '## What happened, why, what we change (to write)',
    '',
  ];
  return lines.join('\n');
}
