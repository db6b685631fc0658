import { COMMANDS, findCommand } from '../../commands/index.js';
import type { Inventory } from '../config/schema.js';
import { MedicError, UnknownClusterError, UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';
import { newRequestId } from '../queue/queue.js';
import { escapeMrkdwn } from '../render/escape.js';
import { authorize, type GroupMembers } from './authorize.js';

export interface SlashInput {
  text: string;
  userId: string;
  channelId: string;
  responseUrl?: string;
}

export interface SlashDeps {
  inventory: Inventory;
  enqueue: (env: JobEnvelope) => Promise<void>;
  groupMembers: GroupMembers;
  log: Logger;
}

/** What to ack with at once, and the work to do after the ack has gone out. */
export interface SlashOutcome {
  ack: { response_type: 'ephemeral'; text: string };
  /** For the metrics: the subcommand as the bot knows it ("unknown" for any other word) and what came of it. */
  counted: { command: string; outcome: 'queued' | 'replied' | 'denied' | 'invalid' | 'unknown' };
  /** Set when the user lacked a role: the denial goes on the timeline too. */
  denied?: string;
  after?: () => Promise<string | void>; // returns an ephemeral follow-up text if something went wrong
}

const MAX_TEXT = 1000;

const ephemeral = (text: string) => ({ response_type: 'ephemeral' as const, text });

function helpHint(): string {
  return `Type \`/etcd help\` for the list. Commands: ${COMMANDS.map((c) => `\`${c.name}\``).join(', ')}.`;
}

/**
 * Parses, authorizes and plans a `/etcd …` command without any I/O to the
 * cluster: the only outside call before the ack is a (cached) Slack group lookup.
 */
export async function handleSlashCommand(input: SlashInput, deps: SlashDeps): Promise<SlashOutcome> {
  if (input.text.length > MAX_TEXT) {
    return { ack: ephemeral(`That command is ${input.text.length} characters long; the limit is ${MAX_TEXT}. ${helpHint()}`), counted: { command: 'unknown', outcome: 'invalid' } };
  }
  const [sub = 'help', ...args] = input.text.trim().split(/\s+/).filter(Boolean);
  const cmd = findCommand(sub.toLowerCase());
  if (!cmd) {
    return { ack: ephemeral(`Unknown subcommand \`${sanitize(sub)}\`. ${helpHint()}`), counted: { command: 'unknown', outcome: 'unknown' } };
  }
  const decision = await authorize(deps.inventory.workspace, cmd.roleFor?.(args) ?? cmd.role, input.userId, input.channelId, deps.groupMembers);
  if (!decision.ok) {
    deps.log.warn({ user: input.userId, channel: input.channelId, cmd: cmd.name }, 'command denied');
    return { ack: ephemeral(`Not allowed: \`/etcd ${cmd.name}\` ${decision.reason}.`), denied: `refused \`/etcd ${cmd.name}\`: ${decision.reason}`, counted: { command: cmd.name, outcome: 'denied' } };
  }

  const invalid = { command: cmd.name, outcome: 'invalid' } as const;
  let result;
  try {
    result = cmd.run(args, { inventory: deps.inventory, userId: input.userId, channelId: input.channelId, commands: COMMANDS });
  } catch (err) {
    if (err instanceof UsageError) return { ack: ephemeral(`${sanitize(err.message)}.\nUsage: \`${err.usage}\``), counted: invalid };
    if (err instanceof UnknownClusterError) {
      return { ack: ephemeral(`Unknown cluster \`${sanitize(err.cluster)}\`. Known clusters: ${err.known.map((k) => `\`${k}\``).join(', ')}.\nUsage: \`${cmd.usage}\``), counted: invalid };
    }
    if (err instanceof MedicError) return { ack: ephemeral(sanitize(err.message)), counted: invalid };
    throw err;
  }

  if (result.kind === 'reply') return { ack: ephemeral(result.text), counted: { command: cmd.name, outcome: 'replied' } };

  const env: JobEnvelope = {
    request: result.job,
    requestId: newRequestId(result.job),
    userId: input.userId,
    channelId: input.channelId,
    responseUrl: input.responseUrl,
    requestedAt: new Date().toISOString(),
  };
  return {
    ack: ephemeral(`${result.ack} (job \`${env.requestId}\`)`),
    counted: { command: cmd.name, outcome: 'queued' },
    after: async () => {
      try {
        await deps.enqueue(env);
        deps.log.info({ job: env.requestId, user: env.userId, channel: env.channelId }, 'job queued');
      } catch (err) {
        deps.log.error({ job: env.requestId, err: (err as Error).message }, 'could not queue job');
        return `Could not hand job \`${env.requestId}\` to a worker: the queue (Redis) did not accept it. Nothing was done. Try again in a moment; if it persists, check the bot's Redis.`;
      }
    },
  };
}

/** User text echoed back is kept short and cannot ping channels or users. */
export function sanitize(s: string): string {
  return escapeMrkdwn(s.slice(0, 200));
}
