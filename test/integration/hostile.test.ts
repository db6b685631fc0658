import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  beforeAll(async () => {
    t = await startMedicLab('hostile', 41, { roles: ROLES });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses every one of them with a clear message, and nothing runs', async () => {
    const since = t.slack.lastSeq;
    const slash = async (text: string, user = 'UALICE') => ackText((await t.command(text, { user })).body);
    const clickAnswer = async (actionId: string, value: string, channel = 'CINCIDENT') =>
      answerAt(t.slack, (await t.click({ user: 'UBOB', channel, messageTs: '1.1', actionId, blockId: 'b', value })).responseUrl);
    const body = slashCommandBody({ text: 'status', userId: 'UALICE', channelId: 'CINCIDENT', responseUrl: t.slack.responseUrl('forged') });

    // What was sent, and what the answer must say. Each row is one attempt.
    const table: [string, () => Promise<string>, string][] = [
      ['shell in a cluster name', () => slash('status lab;reboot'), 'is not a cluster name'],
      ['a second argument smuggled in', () => slash(`status lab ${pwned}`), 'unexpected argument'],
      ['command substitution in a member', () => slash(`replace m3$(touch${pwned})`), 'is not a member name, hex ID or host'],
      ['path trick as a member', () => slash('replace ../../etc/passwd'), 'is not a member name, hex ID or host'],
      ['backticks as a member', () => slash('replace `id`'), 'is not a member name, hex ID or host'],
      ['glued option', () => slash('replace m3 --force;rm'), 'unknown option "--force;rm"'],
      ['path trick as a backup', () => slash('restore ../../../../etc/shadow'), 'is not a backup ID'],
      ['shell in --from', () => slash('restore-quorum --from m1&&reboot'), 'is not a member name'],
      ['bad run ID', () => slash('cancel r-$(id)'), 'is not a run ID'],
      ['oversize payload', () => slash(`status ${'x'.repeat(5000)}`), 'the limit is 1000'],
      ['unknown subcommand', () => slash('rm -rf /'), 'Unknown subcommand `rm`'],
      ['unknown action ID', () => clickAnswer('medic_format_disk', '{}'), 'not one this bot knows'],
      ['forged button value', () => clickAnswer('medic_approve', `{"r":"r-deadbeef","s":1,"h":"${'0'.repeat(64)}"}`), 'there is no run `r-deadbeef`'],
      ['malformed button value', () => clickAnswer('medic_approve', 'x'.repeat(5000)), "not one of this bot's current buttons"],
      ['forged signature', async () => String((await postSigned(t.eventsUrl, 'guess', body)).status), '401'],
      ['replayed request (10 min old)', async () => String((await postSigned(t.eventsUrl, t.secret, body, { timestamp: Math.floor(Date.now() / 1000) - 600 })).status), '401'],
      ['click signed with a wrong secret', async () => String((await postSigned(t.eventsUrl, 'guess', blockActionsBody({ userId: 'UBOB', channelId: 'CINCIDENT', messageTs: '1.1', actionId: 'medic_approve', blockId: 'b', value: '{}', responseUrl: t.slack.responseUrl('x') }))).status), '401'],
    ];
    const results: { attempt: string; refused: boolean; answer: string }[] = [];
    for (const [label, attempt, expected] of table) {
      const answer = await attempt();
      results.push({ attempt: label, refused: answer.includes(expected), answer: answer.slice(0, 90) });
    }
    console.table(results);
    expect(results.filter((r) => !r.refused)).toEqual([]);
    expect(results).toHaveLength(17);

    // Nothing ran: no file on any host, no message in the channel, no run in Redis.
    expect(existsSync(pwned)).toBe(false);
    expect(t.slack.messages((r) => r.seq > since && r.method === 'chat.postMessage')).toEqual([]);
    const redis = connectRedis(t.config.settings.redisUrl);
    expect(await redis.keys(`${t.config.settings.queuePrefix}:run:*`)).toEqual([]);
    redis.disconnect();
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
