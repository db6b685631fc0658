import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobEnvelope, JobRequest } from '../../src/queue/jobs.js';
import type { StepSpec } from '../../src/runbook/types.js';
import { tellJobFailed, told } from '../../src/worker/job-failed.js';
import { aRun, chatContext } from '../support/chat-context.js';
import { threeMasters } from '../support/fixtures.js';

const { inventory } = threeMasters('{ roles: { approve: ["*"] } }');

/** One request of every kind the queue carries, with the words its requester typed (the type makes a new kind fail here until added). */
const EVERY: { [K in JobRequest['name']]: { data: Extract<JobRequest, { name: K }>['data']; typed: string } } = {
  status: { data: { cluster: 'prod' }, typed: '/etcd status prod' },
  nodes: { data: { cluster: 'prod' }, typed: '/etcd nodes prod' },
  'plan-replace': { data: { cluster: 'prod', target: 'm3', force: false }, typed: '/etcd replace m3' },
  'plan-restore-quorum': { data: { cluster: 'prod' }, typed: '/etcd restore-quorum prod' },
  'plan-restore': { data: { cluster: 'prod', backupId: 'b-1' }, typed: '/etcd restore b-1' },
  'plan-defrag': { data: { cluster: 'prod' }, typed: '/etcd defrag prod' },
  step: { data: { runId: 'r-unused', index: 0 }, typed: '' },
  cancel: { data: { runId: 'r-0000beef' }, typed: '/etcd cancel r-0000beef' },
  backup: { data: { cluster: 'prod' }, typed: '/etcd backup prod' },
  'list-backups': { data: { cluster: 'prod' }, typed: '/etcd backups prod' },
  'import-backup': { data: { cluster: 'prod', member: 'm1', path: '/home/core/backup' }, typed: '/etcd backup prod import m1 /home/core/backup' },
  certs: { data: { cluster: 'prod' }, typed: '/etcd certs prod' },
  drift: { data: { cluster: 'prod' }, typed: '/etcd drift prod' },
  'plan-drift-fix': { data: { cluster: 'prod' }, typed: '/etcd drift fix prod' },
  'plan-kubelets-renew': { data: { cluster: 'prod', nodes: ['m1'] }, typed: '/etcd kubelets renew prod m1' },
  incident: { data: { action: 'timeline' }, typed: '/etcd timeline' },
  csr: { data: { cluster: 'prod' }, typed: '/etcd csr prod' },
  watch: { data: { cluster: 'prod' }, typed: 'the status watch of prod' },
  'csr-decide': { data: { decision: 'approve', cluster: 'prod', names: ['csr-abc'] }, typed: 'approve of CSR csr-abc' },
};
// A step tells its run's thread, and the watch looks again at its next tick: both have their own tests below.
const KINDS = (Object.keys(EVERY) as JobRequest['name'][]).filter((k) => k !== 'step' && k !== 'watch');

function envelope(name: JobRequest['name'], channel: string, responseUrl?: string): JobEnvelope {
  return { request: { name, data: EVERY[name].data } as JobRequest, requestId: `q-${name}`, userId: 'UALICE', channelId: channel, requestedAt: new Date().toISOString(), ...(responseUrl ? { responseUrl } : {}) };
}

const ONCE = { attempt: 1, attempts: 1 };

describe('a job that fails tells whoever asked, through the chat port', () => {
  const t = chatContext(inventory);
  beforeAll(async () => {
    // An open incident in each channel: every failure is also kept on its timeline.
    for (const ch of ['CEPH', 'CPOST', 'CEXPIRED', 'CTOLD', 'CSTEP']) await t.incidents.open(ch, 'etcd down', 'UALICE');
  });
  afterAll(() => t.close());

  const timeline = async (channel: string) => (await t.incidents.entries((await t.incidents.current(channel))!.id)).map((e) => e.text);

  it.each(KINDS)('%s asked with a response_url: an ephemeral line to the requester naming what they typed and why it failed, and a timeline entry', async (kind) => {
    const before = t.chat.records.length;
    await tellJobFailed(envelope(kind, 'CEPH', `https://hooks.slack.invalid/${kind}`), new Error(`etcd said no to ${kind}`), ONCE, t.ctx);
    const said = t.chat.records.slice(before);
    expect(said).toEqual([expect.objectContaining({ kind: 'ephemeral', requester: 'UALICE', channel: 'CEPH', responseUrl: `https://hooks.slack.invalid/${kind}` })]);
    expect(t.chat.ephemerals('UALICE').at(-1)).toBe(`:x: \`${EVERY[kind].typed}\` failed: etcd said no to ${kind}. Nothing more was done for it; try again, or ask \`/etcd status\` where things stand.`);
    expect(await timeline('CEPH')).toContain(`\`${EVERY[kind].typed}\` (asked by <@UALICE>) failed: etcd said no to ${kind}`);
  });

  it.each(KINDS)('%s asked without a response_url (a click, the schedule): the line is posted in its channel', async (kind) => {
    const before = t.chat.channel('CPOST').length;
    await tellJobFailed(envelope(kind, 'CPOST'), new Error(`refused ${kind}`), ONCE, t.ctx);
    const posted = t.chat.channel('CPOST');
    expect(posted).toHaveLength(before + 1);
    expect(posted.at(-1)!.text).toBe(`:x: \`${EVERY[kind].typed}\` failed: refused ${kind}. Nothing more was done for it; try again, or ask \`/etcd status\` where things stand.`);
    expect(t.chat.ephemerals()).not.toContainEqual(expect.stringContaining(`refused ${kind}`));
  });

  it('a response_url that no longer answers (expired after 30 minutes): the channel hears it instead', async () => {
    // The fault: Slack refuses the response_url.
    t.chat.failing.set('ephemeral', new Error('response_url answered 404'));
    try {
      await tellJobFailed(envelope('plan-replace', 'CEXPIRED', 'https://hooks.slack.invalid/old'), new Error('no member answers'), ONCE, t.ctx);
    } finally {
      t.chat.failing.delete('ephemeral');
    }
    expect(t.chat.channel('CEXPIRED').map((m) => m.text)).toEqual([expect.stringMatching(/^:x: `\/etcd replace m3` failed: no member answers\./)]);
    expect(await timeline('CEXPIRED')).toContain('`/etcd replace m3` (asked by <@UALICE>) failed: no member answers');
  });

  it('a scheduled backup that failed before saying so itself is told in its channel; one that said so is not told twice, and both are on the timeline', async () => {
    const scheduled: JobEnvelope = { ...envelope('backup', 'CTOLD'), request: { name: 'backup', data: { cluster: 'prod', scheduled: true } }, userId: 'schedule' };
    await tellJobFailed(scheduled, new Error('Redis went away'), ONCE, t.ctx);
    expect(t.chat.channel('CTOLD').map((m) => m.text)).toEqual([expect.stringMatching(/^:x: `scheduled backup of prod` failed: Redis went away\./)]);
    // The backup job said ":x: Backup of prod … failed" in the channel itself, then threw.
    await tellJobFailed(envelope('backup', 'CTOLD', 'https://hooks.slack.invalid/b'), told(new Error('no space left on device')), ONCE, t.ctx);
    expect(t.chat.channel('CTOLD')).toHaveLength(1);
    expect(t.chat.ephemerals().join('\n')).not.toContain('no space left');
    expect(await timeline('CTOLD')).toEqual(expect.arrayContaining(['`scheduled backup of prod` (asked by the schedule) failed: Redis went away', '`/etcd backup prod` (asked by <@UALICE>) failed: no space left on device']));
  });

  it("a step that failed: its run's thread hears it under the plan message, once while it is retried and once when it gives up", async () => {
    const steps = [{ kind: 'verify', title: 'Verify the cluster', destructive: false, operation: 'verify', params: { voters: 3, minRevision: 1 } }] as StepSpec[];
    const run = { ...aRun(inventory, 'r-0000f00d', 'CSTEP', steps), incidentId: (await t.incidents.current('CSTEP'))!.id };
    expect(await t.store.createLocked(run)).toBeNull();
    await t.ctx.notifier.planChanged(run);
    const plan = t.chat.channel('CSTEP');
    expect(plan).toHaveLength(1);
    const stepJob: JobEnvelope = { ...envelope('step', 'CSTEP'), request: { name: 'step', data: { runId: run.runId, index: 0 } }, userId: 'UALICE' };
    for (const attempt of [1, 2, 3]) await tellJobFailed(stepJob, new Error('member m2 did not answer'), { attempt, attempts: 3 }, t.ctx);
    expect(t.chat.thread('CSTEP', plan[0]!.ts)).toEqual([
      ':warning: Step 1 (Verify the cluster) hit an error: member m2 did not answer. It is retried (it checks the cluster first, so nothing is done twice); if it keeps failing the run stops and this thread says so.',
      ':warning: Step 1 (Verify the cluster) hit an error: member m2 did not answer. It is not retried again: the run stops.',
    ]);
    // Nothing outside the thread: no channel message, no ephemeral.
    expect(t.chat.channel('CSTEP')).toHaveLength(1);
    expect(await timeline('CSTEP')).toContain(':warning: Step 1 (Verify the cluster) hit an error: member m2 did not answer. It is not retried again: the run stops.');
  });

  it('a watch tick that failed posts nothing in the channel (the next tick looks again) and is kept on the timeline', async () => {
    const tick: JobEnvelope = { ...envelope('watch', 'CTOLD'), userId: 'schedule' };
    const before = t.chat.records.length;
    await tellJobFailed(tick, new Error('Redis went away'), ONCE, t.ctx);
    expect(t.chat.records.slice(before)).toEqual([]);
    expect(await timeline('CTOLD')).toContain('`the status watch of prod` (asked by the schedule) failed: Redis went away');
  });

  it('what it tells is masked for secrets, as everything the chat sends', async () => {
    const token = `xoxb-${'1'.repeat(12)}-${'a'.repeat(24)}`;
    await tellJobFailed(envelope('status', 'CEPH', 'https://hooks.slack.invalid/s'), new Error(`auth failed with ${token}`), ONCE, t.ctx);
    expect(t.chat.texts().join('\n')).not.toContain(token);
    expect(t.chat.ephemerals().at(-1)).toContain('[secret masked]');
  });
});
