import { UsageError } from '../src/errors.js';
import { escapeMrkdwn } from '../src/render/escape.js';
import { maskSecrets } from '../src/secrets/mask.js';
import type { Command } from './types.js';
import { atMost } from './args.js';

const usage = '/etcd incident start <title> | /etcd incident close';

/**
 * Free text typed by a person: secrets pasted into it masked before it goes
 * anywhere (the queue, the timeline), kept short, and unable to ping the channel
 * or forge a mention.
 */
export function plainText(words: string[], max: number): string {
  return escapeMrkdwn(maskSecrets(words.join(' ')).slice(0, max));
}

export const incident: Command = {
  name: 'incident',
  usage,
  summary: 'open the channel\'s incident (a root message whose thread carries the timeline) or close it',
  role: 'operate',
  run(args) {
    const [action, ...rest] = args;
    if (action === 'start') {
      if (rest.length === 0) throw new UsageError('give the incident a title', usage);
      return { kind: 'job', job: { name: 'incident', data: { action: 'start', text: plainText(rest, 150) } }, ack: 'Opening the incident…' };
    }
    if (action === 'close') {
      atMost(rest, 0, usage);
      return { kind: 'job', job: { name: 'incident', data: { action: 'close' } }, ack: 'Closing the incident…' };
    }
    throw new UsageError(action ? `unknown action "${action}"` : 'say start or close', usage);
  },
};

export const note: Command = {
  name: 'note',
  usage: '/etcd note <text>',
  summary: 'add a line of your own to the incident timeline',
  role: 'read',
  run(args) {
    if (args.length === 0) throw new UsageError('write the note after the command', '/etcd note <text>');
    return { kind: 'job', job: { name: 'incident', data: { action: 'note', text: plainText(args, 1000) } }, ack: 'Noting…' };
  },
};

export const timeline: Command = {
  name: 'timeline',
  usage: '/etcd timeline',
  summary: 'upload the incident timeline as a Markdown postmortem draft (also after it was closed)',
  role: 'read',
  run(args) {
    atMost(args, 0, '/etcd timeline');
    return { kind: 'job', job: { name: 'incident', data: { action: 'timeline' } }, ack: 'Exporting the timeline…' };
  },
};
