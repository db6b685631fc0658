import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { waitFor } from '../../src/lab/proc.js';
import { QUEUE_NAME } from '../../src/queue/queue.js';
import { connectRedis } from '../../src/queue/redis.js';
import { freePort } from '../../src/lab/redis.js';
import { ackText, blockActionsBody, postSigned, slashCommandBody } from '../../src/lab/signed-requests.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };
const WRONG_KEY = 'SHA256:' + 'Q'.repeat(43);

describe('hostile and broken input', () => {
  let t: MedicLab;
  const pwned = '/tmp/etcd-medic-pwned';
  // Canaries that would really fire if a value reached a shell: each names a file of its own.
  const run = randomBytes(3).toString('hex');
  const canaries: string[] = [];
  const canary = () => {
    const path = `/tmp/canary-${run}-${canaries.length}`;
    canaries.push(path);
    return path;
  };
  const subst = () => `$(touch\${IFS}${canary()})`;
  const backticks = () => `\`touch\${IFS}${canary()}\``;
  const semicolon = () => `;touch\${IFS}${canary()}`;
  const newline = () => `\ntouch ${canary()}\n`;
  const ampersand = () => `&&touch\${IFS}${canary()}`;

  beforeAll(async () => {
    t = await startMedicLab('hostile', 41, { roles: ROLES });
  });
  afterAll(async () => {
    for (const c of canaries) rmSync(c, { force: true });
    await t?.stop();
  });

  it('refuses every one of them with a clear message, and nothing runs, not even after the queue has drained', async () => {
    const since = t.slack.lastSeq;
    const jobs: string[] = [];
    const slash = async (text: string, user = 'UALICE', channel = 'CINCIDENT') => {
      const answer = ackText((await t.command(text, { user, channel })).body);
      const job = /\(job `([^`]+)`\)/.exec(answer)?.[1];
      if (job) jobs.push(job);
      return answer;
    };
    const clickAnswer = async (actionId: string, value: string, channel = 'CINCIDENT') =>
      answerAt(t.slack, (await t.click({ user: 'UBOB', channel, messageTs: '1.1', actionId, blockId: 'b', value })).responseUrl);
    const body = slashCommandBody({ text: 'status', userId: 'UALICE', channelId: 'CINCIDENT', responseUrl: t.slack.responseUrl('forged') });
    const button = (runId: unknown, step: unknown, hash: unknown) => JSON.stringify({ r: runId, s: step, h: hash });
    const NOT_MEMBER = 'is not a member name, hex ID or host';
    const NOT_BACKUP = 'is not a backup ID';
    const NOT_CLUSTER = 'is not a cluster name';
    const NOT_BUTTON = "not one of this bot's current buttons";

    // Notes and incident titles are text, not commands: they are taken, masked and
    // escaped, and go on a timeline (in a channel of their own, so the one above stays quiet).
    const incident = await t.command('incident start hostile notes', { user: 'UALICE', channel: 'CNOTES' });
    await answerAt(t.slack, incident.responseUrl);

    // What was sent, and what the answer must say. Each row is one attempt.
    const table: [string, () => Promise<string>, string][] = [
      ['shell in a cluster name', () => slash('status lab;reboot'), NOT_CLUSTER],
      ['command substitution as a cluster', () => slash(`status lab${subst()}`), NOT_CLUSTER],
      ['backticks as a cluster', () => slash(`backup ${backticks()}`), NOT_CLUSTER],
      ['semicolon in the cluster of a replace', () => slash(`replace m3 lab${semicolon()}`), NOT_CLUSTER],
      ['a second argument smuggled in', () => slash(`status lab ${pwned}`), 'unexpected argument'],
      ['command substitution in a member', () => slash(`replace m3${subst()}`), NOT_MEMBER],
      ['backticks as a member', () => slash(`replace ${backticks()}`), NOT_MEMBER],
      ['semicolon after a member', () => slash(`replace m3${semicolon()}`), NOT_MEMBER],
      ['&& after a member', () => slash(`replace m3${ampersand()}`), NOT_MEMBER],
      ['newline after a member', () => slash(`replace m3${newline()}`), 'unexpected argument "/tmp/canary-'],
      ['path trick as a member', () => slash('replace ../../etc/passwd'), NOT_MEMBER],
      ['glued option', () => slash('replace m3 --force;rm'), 'unknown option "--force;rm"'],
      ['path trick as a backup', () => slash('restore ../../../../etc/shadow'), NOT_BACKUP],
      ['command substitution as a backup', () => slash(`restore 2026-11-23_031500${subst()}`), NOT_BACKUP],
      ['backticks as a backup', () => slash(`restore ${backticks()}`), NOT_BACKUP],
      ['semicolon in --snapshot', () => slash(`restore-quorum --snapshot 2026-11-23_031500${semicolon()}`), NOT_BACKUP],
      ['shell in --from', () => slash('restore-quorum --from m1&&reboot'), 'is not a member name'],
      ['command substitution in --from', () => slash(`restore-quorum --from ${subst()}`), 'is not a member name'],
      ['bad run ID', () => slash('cancel r-$(id)'), 'is not a run ID'],
      ['command substitution as a run ID', () => slash(`cancel r-${subst()}`), 'is not a run ID'],
      ['oversize payload', () => slash(`status ${'x'.repeat(5000)}`), 'the limit is 1000'],
      ['unknown subcommand', () => slash('rm -rf /'), 'Unknown subcommand `rm`'],
      ['command substitution as a subcommand', () => slash(`${subst()} status`), 'Unknown subcommand'],
      ['note with command substitution', () => slash(`note ${subst()} and ${backticks()}`, 'UCAROL', 'CNOTES'), 'Noting'],
      ['note with semicolons and newlines', () => slash(`note a${semicolon()}${newline()}b`, 'UCAROL', 'CNOTES'), 'Noting'],
      ['unknown action ID', () => clickAnswer('medic_format_disk', '{}'), 'not one this bot knows'],
      ['forged button value', () => clickAnswer('medic_approve', button('r-deadbeef', 1, '0'.repeat(64))), 'there is no run `r-deadbeef`'],
      ['command substitution in a button run ID', () => clickAnswer('medic_approve', button(`r-${subst()}`, 1, '0'.repeat(64))), NOT_BUTTON],
      ['backticks in a button step', () => clickAnswer('medic_approve', button('r-deadbeef', backticks(), '0'.repeat(64))), NOT_BUTTON],
      ['semicolon in a button hash', () => clickAnswer('medic_reject', button('r-deadbeef', 1, `${'0'.repeat(60)}${semicolon()}`)), NOT_BUTTON],
      ['malformed button value', () => clickAnswer('medic_approve', 'x'.repeat(5000)), NOT_BUTTON],
      ['forged signature', async () => String((await postSigned(t.eventsUrl, 'guess', body)).status), '401'],
      ['replayed request (10 min old)', async () => String((await postSigned(t.eventsUrl, t.secret, body, { timestamp: Math.floor(Date.now() / 1000) - 600 })).status), '401'],
      ['click signed with a wrong secret', async () => String((await postSigned(t.eventsUrl, 'guess', blockActionsBody({ userId: 'UBOB', channelId: 'CINCIDENT', messageTs: '1.1', actionId: 'medic_approve', blockId: 'b', value: '{}', responseUrl: t.slack.responseUrl('x') }))).status), '401'],
      ['a command from another Slack team', async () => ackText((await postSigned(t.eventsUrl, t.secret, slashCommandBody({ text: 'replace m3', userId: 'UALICE', channelId: 'CINCIDENT', responseUrl: t.slack.responseUrl('team'), teamId: 'TEVIL' }))).body), 'serves another Slack workspace'],
      ['a click from another Slack team', async () => {
        const form = new URLSearchParams(blockActionsBody({ userId: 'UBOB', channelId: 'CINCIDENT', messageTs: '1.1', actionId: 'medic_approve', blockId: 'b', value: button('r-deadbeef', 1, '0'.repeat(64)), responseUrl: t.slack.responseUrl('team-click') }));
        form.set('payload', form.get('payload')!.replaceAll('TLAB', 'TEVIL'));
        const res = await postSigned(t.eventsUrl, t.secret, form.toString());
        // Acked (Slack needs an answer) and nothing else: no answer at its response_url.
        return `${res.status} ${t.slack.messages((r) => r.kind === 'response_url' && r.method === 'team-click').length} answers`;
      }, '200 0 answers'],
    ];
    const results: { attempt: string; refused: boolean; answer: string }[] = [];
    for (const [label, attempt, expected] of table) {
      const answer = await attempt();
      results.push({ attempt: label, refused: answer.includes(expected), answer: answer.slice(0, 90) });
    }
    console.table(results);
    expect(results.filter((r) => !r.refused)).toEqual([]);
    expect(results).toHaveLength(36);
    expect(t.logs.join('')).toContain('request from another Slack team refused');

    // The queue drained: every job the acks named has ended, and none waits, runs or is delayed.
    const queue = new Queue(QUEUE_NAME, { connection: { url: t.config.settings.redisUrl }, prefix: t.config.settings.queuePrefix });
    expect(jobs.length).toBeGreaterThanOrEqual(2); // the notes
    await waitFor('every queued job to end', async () => {
      const states = await Promise.all(jobs.map(async (id) => (await queue.getJob(id))?.getState()));
      return states.every((s) => s === 'completed' || s === 'failed');
    }, 30_000, 100);
    expect(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0, 'waiting-children': 0 });
    await queue.close();

    // Nothing ran: no canary file on this machine (every lab host is on it), no message in the channel, no run in Redis.
    expect(canaries.length).toBeGreaterThanOrEqual(20);
    expect(canaries.filter((c) => existsSync(c))).toEqual([]);
    expect(existsSync(pwned)).toBe(false);
    expect(t.slack.messages((r) => r.seq > since && r.method === 'chat.postMessage' && r.body.channel === 'CINCIDENT')).toEqual([]);
    const redis = connectRedis(t.config.settings.redisUrl);
    expect(await redis.keys(`${t.config.settings.queuePrefix}:run:*`)).toEqual([]);
    redis.disconnect();
    // The notes are on the timeline as the text they were, inert.
    const notes = t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.channel === 'CNOTES').map((r) => JSON.stringify(r.body)).join('');
    await waitFor('the notes mirrored to the incident thread', async () => {
      const all = t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.channel === 'CNOTES').map((r) => String(r.body.text)).join('\n');
      return all.includes('$(touch${IFS}') && all.includes('`touch${IFS}');
    }, 15_000, 200);
    expect(notes).not.toContain('<!channel>');
  });
});

describe('an SSH host key that changed', () => {
  let t: MedicLab;

  beforeAll(async () => {
    // The fault: m3's host key no longer matches the inventory (a rebuilt host, or someone in the middle).
    t = await startMedicLab('hostkey', 42, {
      roles: ROLES,
      editInventory: (inv) => {
        inv.clusters[0].members.find((m: { name: string }) => m.name === 'm3').ssh.hostKeyFingerprint = WRONG_KEY;
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses the replace at planning, naming both keys, and nothing is done anywhere', async () => {
    const { text, m3 } = await refusedReplace(t);
    const real = t.lab.host('m3').ssh.fingerprint;
    expect(text).toContain(`m3 (127.0.42.3): host key changed: the host shows ${real}, the inventory pins ${WRONG_KEY}.`);
    // Nothing ran: m3 is still a member, its manifest and its data dir are where they were.
    expect((await t.lab.memberList()).map((m) => m.id)).toContain(m3);
    expect(existsSync(join(t.lab.host('m3').manifestsDir, 'etcd.yaml'))).toBe(true);
    expect(existsSync(t.lab.host('m3').dataDir)).toBe(true);
  });
});

describe('an SSH host that does not answer', () => {
  let t: MedicLab;
  let silent: Server;
  let port = 0;

  beforeAll(async () => {
    // The fault: m3's SSH port accepts connections and then says nothing (a hung host).
    port = await freePort('127.0.44.3');
    silent = createServer(() => undefined).listen(port, '127.0.44.3');
    t = await startMedicLab('hung-host', 44, {
      roles: ROLES,
      editInventory: (inv) => {
        inv.clusters[0].members.find((m: { name: string }) => m.name === 'm3').ssh.port = port;
      },
    });
  });
  afterAll(async () => {
    silent?.close();
    await t?.stop();
  });

  it('refuses the replace at planning within the SSH timeout, with a clear message', async () => {
    const { text, m3 } = await refusedReplace(t);
    expect(text).toContain(`m3 (127.0.44.3) cannot be reached over SSH (root@127.0.44.3:${port}: no SSH handshake within 5000 ms)`);
    expect((await t.lab.memberList()).map((m) => m.id)).toContain(m3);
  });
});

/** A replace of m3 (its disk broken) asked for, and refused at planning: the refusal's text and m3's member ID. */
async function refusedReplace(t: MedicLab): Promise<{ text: string; m3: string }> {
  await t.lab.corruptMember('m3');
  const m3 = (await t.lab.memberList()).find((m) => m.name === 'm3')!.id;
  const since = t.slack.lastSeq;
  await t.command('replace m3', { user: 'UALICE' });
  const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(\/etcd replace m3 refused|Replace m3 in)/.test(String(r.body.text)), 30_000, since);
  return { text: textOf(msg), m3 };
}
