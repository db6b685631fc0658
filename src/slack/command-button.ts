import type { Recorder } from '../incident/record.js';
import { commandText, decodeCommand } from '../render/command-button.js';
import { maskSecrets } from '../secrets/mask.js';
import { handleSlashCommand, sanitize, type SlashDeps } from './slash-command.js';

export interface CommandClick {
  value: unknown;
  userId: string;
  channelId: string;
  /** The click's response_url: where the answers go, as for a typed command. */
  responseUrl?: string;
}

/**
 * A button that offers a command (`/etcd csr prod` under a run that ended with
 * pending CSRs): its click runs exactly what typing that command runs, as the
 * person who clicks: the same parsing, role check, ack text and job, and the
 * same timeline entries. `say` answers the clicker (ephemeral).
 */
export async function handleCommandClick(click: CommandClick, deps: SlashDeps & { record: Recorder }, say: (text: string) => Promise<void>): Promise<void> {
  const cmd = decodeCommand(click.value);
  if (!cmd) {
    deps.log.warn({ user: click.userId }, 'command button with a value that is not ours');
    await say(":no_entry: That button is not one of this bot's buttons; nothing was done.");
    return;
  }
  const text = commandText(cmd);
  const outcome = await handleSlashCommand({ text, userId: click.userId, channelId: click.channelId, responseUrl: click.responseUrl }, deps);
  await say(maskSecrets(outcome.ack.text));
  const problem = await outcome.after?.();
  if (problem) await say(maskSecrets(problem));
  await deps.record(click.channelId, { kind: 'command', actor: click.userId, text: `/etcd ${sanitize(text)} (button)` });
  if (outcome.denied) await deps.record(click.channelId, { kind: 'denied', actor: click.userId, text: outcome.denied });
}
