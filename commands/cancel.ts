import { UsageError } from '../src/errors.js';
import type { Command } from './types.js';
import { atMost } from './args.js';

const usage = '/etcd cancel <run-id>';

export const cancel: Command = {
  name: 'cancel',
  usage,
  summary: 'stop a run between steps; the thread says exactly what was done and what was not. Also releases a cluster lock left by a run that is gone or has ended',
  role: 'destroy',
  run(args) {
    if (args.length === 0) throw new UsageError('name the run to cancel (its ID, r-…, is on the plan message)', usage);
    atMost(args, 1, usage);
    const runId = args[0]!.toLowerCase();
    if (!/^r-[0-9a-f]{8}$/.test(runId)) throw new UsageError(`"${args[0]}" is not a run ID (they look like r-1a2b3c4d)`, usage);
    return { kind: 'job', job: { name: 'cancel', data: { runId } }, ack: `Cancelling run \`${runId}\`…` };
  },
};
