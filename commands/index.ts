import type { Command } from './types.js';
import { backup, backups } from './backup.js';
import { cancel } from './cancel.js';
import { defrag } from './defrag.js';
import { csr } from './csr.js';
import { drift } from './drift.js';
import { certs } from './certs.js';
import { help } from './help.js';
import { incident, note, timeline } from './incident.js';
import { kubelets } from './kubelets.js';
import { nodes } from './nodes.js';
import { replace } from './replace.js';
import { restoreQuorum } from './restore-quorum.js';
import { restore } from './restore.js';
import { status } from './status.js';

/** Every /etcd subcommand. Adding a command is adding a file and a line here. */
export const COMMANDS: readonly Command[] = [status, nodes, certs, drift, backup, backups, replace, restoreQuorum, restore, defrag, kubelets, cancel, incident, note, timeline, csr, help];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export type { Command, CommandContext, CommandResult } from './types.js';
