import type { Chat, ReplyTo } from '../chat/port.js';
import { recorder } from '../incident/record.js';
import type { Logger } from '../log.js';
import type { JobEnvelope, JobRequest } from '../queue/jobs.js';
import { TERMINAL } from '../runbook/types.js';
import type { WorkerContext } from './context.js';
import { replyTo } from './reply-to.js';

const TOLD = Symbol('the requester was told');

/**
 * For a handler that has already told the requester (or the channel) what failed,
 * in its own words, before it throws: the timeline still keeps the failure, and
 * nobody hears it twice.
 */
export function told<E extends Error>(err: E): E {
  Object.defineProperty(err, TOLD, { value: true });
  return err;
}

const wasTold = (err: Error) => (err as unknown as Record<symbol, unknown>)[TOLD] === true;

/** What the person typed, as they would recognise it. */
function asked(req: JobRequest): string {
  switch (req.name) {
    case 'status':
      return `/etcd status ${req.data.cluster}`;
    case 'watch':
      return `the status watch of ${req.data.cluster}`;
    case 'nodes':
      return `/etcd nodes ${req.data.cluster}`;
    case 'plan-replace':
      return `/etcd replace ${req.data.target}`;
    case 'plan-restore-quorum':
      return `/etcd restore-quorum ${req.data.cluster}`;
    case 'plan-restore':
      return `/etcd restore ${req.data.backupId}`;
    case 'plan-defrag':
      return `/etcd defrag ${req.data.cluster}`;
    case 'cancel':
      return `/etcd cancel ${req.data.runId}`;
    case 'backup':
      return req.data.scheduled ? `scheduled backup of ${req.data.cluster}` : `/etcd backup ${req.data.cluster}`;
    case 'list-backups':
      return `/etcd backups ${req.data.cluster}`;
    case 'import-backup':
      return `/etcd backup ${req.data.cluster} import ${req.data.member} ${req.data.path}`;
    case 'certs':
      return `/etcd certs ${req.data.cluster}`;
    case 'drift':
      return `/etcd drift ${req.data.cluster}`;
    case 'plan-drift-fix':
      return `/etcd drift fix ${req.data.cluster}`;
    case 'plan-kubelets-renew':
      return `/etcd kubelets renew ${[req.data.cluster, ...req.data.nodes].join(' ')}`;
    case 'incident':
      return `/etcd ${req.data.action === 'start' || req.data.action === 'close' ? `incident ${req.data.action}` : req.data.action}`;
    case 'step':
      return `step ${req.data.index + 1} of ${req.data.runId}`;
    case 'csr':
      return `/etcd csr ${req.data.cluster}`;
    case 'csr-decide':
      return `${req.data.decision} of CSR${req.data.names ? ` ${req.data.names.join(' ')}` : 's'}`;
    default: {
      // A job from a newer bot than this worker: still named, so its requester hears something.
      const unknown: { name?: unknown } = req;
      return `a request of kind ${String(unknown.name)}`;
    }
  }
}

/**
 * A line to the person who asked: only to them where the request carried a
 * response_url, else (or if that no longer answers: it expires after 30
 * minutes) in the channel it was asked in.
 */
async function tellRequester(chat: Chat, to: ReplyTo, text: string, log: Logger): Promise<void> {
  if (to.responseUrl) {
    try {
      if (await chat.ephemeral(to, text)) return;
    } catch (err) {
      log.warn({ channel: to.channel, err: (err as Error).message }, 'response_url did not take the failure; telling the channel');
    }
  }
  if (to.channel) await chat.post(to.channel, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }] });
}

/**
 * A job threw: the requester hears what failed (ephemeral, or in the run's thread
 * for a step) through the chat port, unless the handler already said it (`told`),
 * and the incident's timeline keeps it. A step that will be retried
 * says so once, on its first failure; a step that gave up is ended by the sweeper,
 * which says so in the thread.
 */
export async function tellJobFailed(env: JobEnvelope, err: Error, tries: { attempt: number; attempts: number }, ctx: WorkerContext): Promise<void> {
  const msg = err.message.slice(0, 1000);
  const req = env.request;
  if (req.name === 'step') {
    if (tries.attempt !== 1 && tries.attempt < tries.attempts) return;
    const run = await ctx.store.get(req.data.runId);
    if (!run || TERMINAL.includes(run.status)) return;
    const step = run.steps[req.data.index];
    const then = tries.attempt < tries.attempts ? 'It is retried (it checks the cluster first, so nothing is done twice); if it keeps failing the run stops and this thread says so.' : 'It is not retried again: the run stops.';
    await ctx.notifier.thread(run, `:warning: Step ${req.data.index + 1}${step ? ` (${step.title})` : ''} hit an error: ${msg}. ${then}`);
    return;
  }
  const text = `:x: \`${asked(req)}\` failed: ${msg}. Nothing more was done for it; try again, or ask \`/etcd status\` where things stand.`;
  try {
    // The watch tries again at its next tick rather than fill the channel with failures.
    if (!wasTold(err) && req.name !== 'watch') await tellRequester(ctx.chat, replyTo(env), text, ctx.log);
  } finally {
    await recorder(ctx.incidents, ctx.log)(env.channelId, { kind: 'run', actor: 'bot', text: `\`${asked(req)}\` (asked by ${env.userId === 'schedule' ? 'the schedule' : `<@${env.userId}>`}) failed: ${msg}` });
  }
}
