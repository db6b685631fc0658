import type { Inventory, Role } from '../src/config/schema.js';
import type { JobRequest } from '../src/queue/jobs.js';

export interface CommandContext {
  inventory: Inventory;
  userId: string;
  channelId: string;
  /** Every registered command, for help. */
  commands: readonly Command[];
}

/** What a command asks for: an immediate ephemeral reply, or work for a worker. */
export type CommandResult = { kind: 'reply'; text: string } | { kind: 'job'; job: JobRequest; ack: string };

export interface Command {
  name: string;
  usage: string;
  summary: string;
  /** The role a user needs to run it (see workspace.roles in the inventory). */
  role: Role;
  /** When the role depends on the arguments (`/etcd csr` reads, `/etcd csr approve` decides): the role for these. */
  roleFor?(args: string[]): Role;
  /** Parses and validates arguments; throws UsageError or UnknownClusterError on bad input. Never does I/O. */
  run(args: string[], ctx: CommandContext): CommandResult;
}
