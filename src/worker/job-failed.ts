import { recorder } from '../incident/record.js';
import type { JobEnvelope, JobRequest } from '../queue/jobs.js';
import { TERMINAL } from '../runbook/types.js';
import type { WorkerContext } from './context.js';

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
  }
}

/**
 * A job threw: the requester hears what failed (ephemeral, or in the run's thread
 * for a step) and the incident's timeline keeps it. A step that will be retried
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
  // A backup already told the channel; the watch tries again at its next tick rather than fill the channel with failures;
  // everything else answers the person who asked.
  if (req.name !== 'backup' && req.name !== 'watch') {
    if (env.responseUrl) await ctx.slack.ephemeral(env, text);
    else if (env.channelId) await ctx.slack.postTo(env.channelId, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }] });
  }
  await recorder(ctx.incidents, ctx.log)(env.channelId, { kind: 'run', actor: 'bot', text: `\`${asked(req)}\` (asked by ${env.userId === 'schedule' ? 'the schedule' : `<@${env.userId}>`}) failed: ${msg}` });
}
