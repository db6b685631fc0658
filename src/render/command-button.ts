import type { CommandOffer } from '../runbook/types.js';
import { clip } from './status-message.js';

/** The action ID of a button that runs a `/etcd` command as the person who clicks it. */
export const COMMAND_ACTION = 'medic_command';

const COMMAND = /^[a-z][a-z-]{0,29}$/;
// What a cluster name, member, backup or run ID looks like: nothing a command line would read as more.
const ARG = /^[A-Za-z0-9._-]{1,100}$/;

export function encodeCommand(o: Pick<CommandOffer, 'command' | 'args'>): string {
  return JSON.stringify({ c: o.command, a: o.args });
}

/** Parses a command button's value; anything that is not exactly what we put there is refused. */
export function decodeCommand(value: unknown): { command: string; args: string[] } | null {
  if (typeof value !== 'string' || value.length > 500) return null;
  try {
    const o = JSON.parse(value) as { c?: unknown; a?: unknown };
    if (typeof o.c !== 'string' || !COMMAND.test(o.c)) return null;
    if (!Array.isArray(o.a) || o.a.length > 5 || !o.a.every((x) => typeof x === 'string' && ARG.test(x))) return null;
    return { command: o.c, args: o.a as string[] };
  } catch {
    return null;
  }
}

/** The text a person would type for the same thing. */
export function commandText(o: { command: string; args: string[] }): string {
  return [o.command, ...o.args].join(' ');
}

/** A button that runs the command as whoever clicks it (an actions element or a section's accessory). */
export function commandButton(o: CommandOffer): Record<string, unknown> {
  return { type: 'button', action_id: COMMAND_ACTION, text: { type: 'plain_text', text: clip(o.label, 75) }, value: encodeCommand(o) };
}

/** An actions block with one button that runs the command, beside the text that says what it is. */
export function commandButtonBlock(o: CommandOffer, blockId: string): Record<string, unknown> {
  return { type: 'actions', block_id: blockId.slice(0, 255), elements: [commandButton(o)] };
}
