import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import type { JobEnvelope, JobRequest } from '../../src/queue/jobs.js';
import type { StepSpec } from '../../src/runbook/types.js';
import { runListBackups } from '../../src/worker/jobs/backup.js';
import { runCancel } from '../../src/worker/jobs/cancel.js';
import { runIncident } from '../../src/worker/jobs/incident.js';
import { runPlanReplace } from '../../src/worker/jobs/replace.js';
import { runStatus } from '../../src/worker/jobs/status.js';
import { tellJobFailed } from '../../src/worker/job-failed.js';
import { aRun, chatContext } from '../support/chat-context.js';
import { threeMasters } from '../support/fixtures.js';

const { inventory } = threeMasters('{ roles: { approve: ["*"] } }');

/** A slash command's job as the bot queues it: who, where, and the response_url Slack gave it. */
function job<N extends JobRequest['name']>(name: N, data: Extract<JobRequest, { name: N }>['data'], channel: string, user = 'UALICE'): JobEnvelope & { request: Extract<JobRequest, { name: N }> } {
  return { request: { name, data } as Extract<JobRequest, { name: N }>, requestId: `q-${name}`, userId: user, channelId: channel, responseUrl: `https://hooks.slack.invalid/${name}`, requestedAt: new Date().toISOString() };
}

describe('job handlers answer through the chat port', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medic-chat-backups-'));
  const t = chatContext(inventory, { backups: new DirectoryBackupStore(dir) });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/etcd incident start, note, timeline: a root message in the channel, lines only the requester sees, the postmortem uploaded into the thread with secrets masked', async () => {
    const token = `xoxb-${'3'.repeat(12)}-${'c'.repeat(24)}`;
    await runIncident(job('incident', { action: 'start', text: 'etcd lost quorum' }, 'CINC'), t.ctx);
    const [root] = t.chat.channel('CINC');
    expect(root!.text).toBe('Incident: etcd lost quorum');
    const id = (await t.incidents.current('CINC'))!.id;
    expect((await t.incidents.get(id))!.rootTs).toBe(root!.ts);
    expect(t.chat.ephemerals('UALICE').at(-1)).toBe(`Incident \`${id}\` opened: etcd lost quorum.`);

    await runIncident(job('incident', { action: 'note', text: `rotated ${token} after the leak` }, 'CINC', 'UBOB'), t.ctx);
    expect(t.chat.ephemerals('UBOB')).toEqual([`Noted on \`${id}\`.`]);

    await runIncident(job('incident', { action: 'timeline' }, 'CINC'), t.ctx);
    const [file] = t.chat.uploads();
    expect(file).toMatchObject({ channel: 'CINC', threadTs: root!.ts, filename: `postmortem-${id}.md`, title: 'Postmortem draft: etcd lost quorum' });
    expect(file!.comment).toMatch(/hash chain intact/);
    expect(file!.content).toContain('rotated [secret masked] after the leak');
    expect(t.chat.texts().join('\n')).not.toContain(token);
    // Nothing but the root message went to the channel itself.
    expect(t.chat.channel('CINC')).toHaveLength(1);
  });

  it('/etcd cancel: each answer goes only to the person who typed it', async () => {
    await runCancel(job('cancel', { runId: 'r-0000dead' }, 'CCAN'), t.ctx);
    expect(t.chat.ephemerals('UALICE').at(-1)).toBe('There is no run `r-0000dead`. The run ID is on the plan message (`r-…`).');

    const steps = [{ kind: 'verify', title: 'Check', destructive: false, operation: 'verify', params: { voters: 3, minRevision: 1 } }] as StepSpec[];
    const run = aRun(inventory, 'r-0000ca11', 'CCAN', steps, 'prod-cancel');
    expect(await t.store.createLocked(run)).toBeNull();
    await runCancel(job('cancel', { runId: run.runId }, 'COTHER', 'UBOB'), t.ctx);
    expect(t.chat.ephemerals('UBOB').at(-1)).toBe('Run `r-0000ca11` belongs to <#CCAN>; cancel it there.');
    await runCancel(job('cancel', { runId: run.runId }, 'CCAN', 'UBOB'), t.ctx);
    expect(t.chat.ephemerals('UBOB').at(-1)).toMatch(/^Cancel requested for run `r-0000ca11`/);
    expect((await t.store.get(run.runId))!.stopRequest).toBeTruthy();
    expect(t.enqueued).toContainEqual({ runId: run.runId, index: 0, tag: 'stop' });
    expect(t.chat.channel('CCAN')).toEqual([]);
  });

  it('/etcd backups: the list goes to the requester alone', async () => {
    await runListBackups(job('list-backups', { cluster: 'prod' }, 'CBAK', 'UCAROL'), t.ctx);
    expect(t.chat.ephemerals('UCAROL')).toEqual(['No backups of prod yet. `/etcd backup prod` takes one.']);
  });

  it('/etcd replace on a cluster this worker does not know: refused in the channel for everyone, and on the timeline', async () => {
    await t.incidents.open('CREP', 'm3 down', 'UALICE');
    const out = await runPlanReplace(job('plan-replace', { cluster: 'staging', target: 'm3', force: false }, 'CREP'), t.ctx);
    expect(out).toBe('refused: cluster "staging" is not in this worker\'s inventory.');
    expect(t.chat.channel('CREP').map((m) => m.blocks)).toEqual([[{ type: 'section', text: { type: 'mrkdwn', text: ':no_entry: *`/etcd replace m3` refused* (asked by <@UALICE>): cluster "staging" is not in this worker\'s inventory.' } }]]);
    const entries = await t.incidents.entries((await t.incidents.current('CREP'))!.id);
    expect(entries.map((e) => [e.kind, e.text])).toContainEqual(['denied', '/etcd replace m3 refused: cluster "staging" is not in this worker\'s inventory.']);
  });

  it('/etcd status on a cluster this worker does not know: the requester hears why, and the failure is on the timeline', async () => {
    await t.incidents.open('CSTAT', 'checking', 'UALICE');
    const env = job('status', { cluster: 'staging' }, 'CSTAT');
    const err = await runStatus(env, { inventory, pool: null as never, chat: t.chat }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    // What the worker does with a job that threw.
    await tellJobFailed(env, err as Error, { attempt: 1, attempts: 1 }, t.ctx);
    // One line, not that line and then a generic ":x: failed" after it.
    expect(t.chat.ephemerals('UALICE').filter((e) => e.includes('staging'))).toEqual(['Cluster "staging" is not in this worker\'s inventory. Type `/etcd help` for the known clusters.']);
    expect(t.chat.channel('CSTAT')).toEqual([]);
    const entries = await t.incidents.entries((await t.incidents.current('CSTAT'))!.id);
    expect(entries.map((e) => e.text)).toContain('`/etcd status staging` (asked by <@UALICE>) failed: unknown cluster staging');
  });
});
