import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import { connectRedis } from '../../src/queue/redis.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };

describe('the incident timeline', () => {
  let t: MedicLab;
  let store: IncidentStore;
  let redis: ReturnType<typeof connectRedis>;

  beforeAll(async () => {
    t = await startMedicLab('incident', 39, { roles: ROLES });
    redis = connectRedis(t.config.settings.redisUrl);
    store = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  /** Everything mirrored into the incident's thread so far, as text. */
  const mirrored = (rootTs: string) => t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.thread_ts === rootTs).map(textOf).join('\n');

  it('records a whole replace, mirrors it to the incident thread, exports it as a postmortem, and keeps it after close', async () => {
    const start = await t.command('incident start etcd down in <!channel> lab', { user: 'UALICE' });
    expect(await answerAt(t.slack, start.responseUrl)).toMatch(/Incident `inc-[0-9a-f]{8}` opened: etcd down in &lt;!channel&gt; lab/);
    const root = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).startsWith('Incident: etcd down'), 10_000);
    const inc = (await store.current('CINCIDENT'))!;
    expect(inc.rootTs).toBe(root.ts);

    await t.command('note looked at the dashboards: m3 disk errors', { user: 'UCAROL' });
    await t.command('replace m3', { user: 'UEVE' }); // denied: no destroy role

    await t.lab.corruptMember('m3');
    const since = t.slack.lastSeq;
    await t.command('replace m3', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
    const g1 = await waitForGate(t.slack, plan.ts!, 1);
    // A click by someone who may not approve: refused, and on the record.
    await answerAt(t.slack, (await t.click({ user: 'UEVE', messageTs: plan.ts!, actionId: 'medic_approve', blockId: g1.blockId, value: g1.approve })).responseUrl);
    await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: plan.ts!, actionId: 'medic_approve', blockId: g1.blockId, value: g1.approve })).responseUrl);
    const g2 = await waitForGate(t.slack, plan.ts!, 2);
    await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: plan.ts!, actionId: 'medic_approve', blockId: g2.blockId, value: g2.approve })).responseUrl);
    await waitForRunStatus(t.slack, plan.ts!, 'DONE');

    const entries = await store.entries(inc.id);
    const kinds = entries.map((e) => e.kind);
    for (const k of ['incident', 'note', 'command', 'denied', 'plan', 'state', 'approval', 'step']) expect(kinds).toContain(k);
    expect(entries.find((e) => e.kind === 'note')).toMatchObject({ actor: 'UCAROL', text: 'looked at the dashboards: m3 disk errors' });
    expect(entries.find((e) => e.kind === 'denied' && e.actor === 'UEVE' && e.text.includes('`/etcd replace`'))!.text).toContain('*destroy* role');
    expect(entries.filter((e) => e.kind === 'approval').map((e) => e.actor)).toEqual(['UBOB', 'UBOB']);
    expect(entries.some((e) => e.kind === 'denied' && e.actor === 'UEVE' && e.text.includes('approve of step 2'))).toBe(true);
    expect(await store.verify(inc.id)).toEqual({ ok: true, count: entries.length });

    // The thread mirrors every entry, batched: fewer messages than entries.
    await waitFor('the mirror to catch up', async () => (await store.mirroredUpTo(inc.id)) >= entries.length, 15_000);
    const thread = mirrored(inc.rootTs!);
    expect(thread).toContain('looked at the dashboards');
    expect(thread).toContain('approved step 2 (Remove m3 from the member list)');
    expect(thread).toContain('finished: every step done');
    expect(t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.thread_ts === inc.rootTs).length).toBeLessThan(entries.length);

    const close = await t.command('incident close', { user: 'UALICE' });
    expect(await answerAt(t.slack, close.responseUrl)).toContain(`Incident \`${inc.id}\` closed`);
    // Read back after the close: the postmortem draft.
    await t.command('timeline', { user: 'UCAROL' });
    const upload = await t.slack.waitFor((r) => r.method === 'files.completeUploadExternal', 15_000);
    const md = (upload.body.contents as string[]).join('');
    expect(upload.body.channel_id).toBe('CINCIDENT');
    expect(md).toContain('# Postmortem draft: etcd down in &lt;!channel&gt; lab');
    expect(md).toMatch(/- Closed: \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z by <@UALICE> \(duration/);
    expect(md).toMatch(/hash chain intact/);
    expect(md).toMatch(/## Approvals\n\n- \d{4}-\d{2}-\d{2} [\d:]+Z <@UBOB>: approved step 2/);
    expect(md).toContain('| time | +since open | who | what |');
    expect(md).toContain('No restore in this incident');

    // Secrets: none of them in anything written (logs, Slack, uploads, the timeline).
    const secrets = [
      t.config.settings.slack.botToken!,
      t.secret,
      t.config.settings.hmacKey,
      readFileSync(t.lab.sshKey, 'utf8').split('\n').slice(1, -2).join(''),
      readFileSync(t.lab.tls.key, 'utf8').split('\n').slice(1, -2).join(''),
    ];
    const written = [t.logs.join(''), JSON.stringify(t.slack.records), [...t.slack.uploads.values()].join(''), JSON.stringify(await store.entries(inc.id))].join('\n').replace(/\\n|\n/g, '');
    for (const s of secrets) {
      expect(s.length).toBeGreaterThan(20);
      expect(written.includes(s)).toBe(false);
      expect(written.includes(s.slice(0, 24))).toBe(false);
    }
  });

  it('detects an edited timeline entry', async () => {
    const inc = (await store.latest('CINCIDENT'))!;
    const key = `${t.config.settings.queuePrefix}:timeline:${inc.id}`;
    const second = JSON.parse((await redis.lindex(key, 1))!) as { text: string };
    // The fault: someone rewrites history in Redis.
    await redis.lset(key, 1, JSON.stringify({ ...second, text: 'nothing happened here' }));
    expect(await store.verify(inc.id)).toEqual({ ok: false, seq: 2, reason: 'entry 2 was changed after it was written (its signature does not match)' });
    await t.command('timeline', { user: 'UCAROL' });
    const upload = await t.slack.waitFor((r) => r.method === 'files.completeUploadExternal' && (r.body.contents as string[]).join('').includes('hash chain broken'), 15_000);
    expect((upload.body.contents as string[]).join('')).toContain('**hash chain broken at entry 2: entry 2 was changed after it was written (its signature does not match)**');
  });

  it('loses nothing when Slack answers 500 and 429 for a while', async () => {
    await t.command('incident start second incident', { user: 'UALICE' });
    const inc = await waitFor('the second incident', async () => {
      const i = await store.current('CINCIDENT');
      return i?.rootTs ? i : null;
    }, 10_000);
    // The fault: Slack fails the next posts (500 twice, then 429 with Retry-After 1 s).
    t.slack.fail('chat.postMessage', 500, 2);
    t.slack.fail('chat.postMessage', 429, 1, 1);
    for (let i = 0; i < 5; i++) await t.command(`note line ${i}`, { user: 'UCAROL' });
    const count = async () => (await store.entries(inc.id)).length;
    await waitFor('five notes on the timeline', async () => (await store.entries(inc.id)).filter((e) => e.kind === 'note').length === 5, 15_000);
    await waitFor('the mirror to catch up', async () => (await store.mirroredUpTo(inc.id)) >= (await count()), 30_000, 200);
    const thread = mirrored(inc.rootTs!);
    for (let i = 0; i < 5; i++) expect(thread).toContain(`note line ${i}`);
    // Each batch ends with a checkpoint: the chain's length and head, a copy outside Redis.
    const last = (await store.entryAt(inc.id, await store.mirroredUpTo(inc.id)))!;
    expect(JSON.stringify(t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.thread_ts === inc.rootTs).map((r) => r.body.blocks))).toContain(`checkpoint: ${last.seq} entries, head \`${last.hash.slice(0, 12)}\``);

    // The fault: an entry the thread already shows is rewritten in Redis. The mirror says so in the thread.
    const key = `${t.config.settings.queuePrefix}:timeline:${inc.id}`;
    const raw = JSON.parse((await redis.lindex(key, last.seq - 1))!) as { text: string };
    await redis.lset(key, last.seq - 1, JSON.stringify({ ...raw, text: 'nothing to see' }));
    await t.command('note one more', { user: 'UCAROL' });
    await t.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.thread_ts === inc.rootTs && String(r.body.text).includes('The timeline in Redis no longer matches what it was: the chain breaks at entry'), 15_000);
    await answerAt(t.slack, (await t.command('incident close', { user: 'UALICE' })).responseUrl);
  });

  it('never cries wolf: a new incident, a status, two notes, and ten exports in a row all say the chain is intact', async () => {
    expect(await answerAt(t.slack, (await t.command('incident start wolf', { user: 'UALICE' })).responseUrl)).toContain('opened: wolf');
    await waitFor('the incident', async () => (await store.current('CINCIDENT'))?.rootTs, 10_000);
    await t.command('status', { user: 'UCAROL' });
    await t.command('note first', { user: 'UCAROL' });
    await t.command('note second', { user: 'UCAROL' });
    const since = t.slack.lastSeq;
    for (let i = 0; i < 10; i++) await t.command('timeline', { user: 'UCAROL' });
    await waitFor('ten exports', async () => t.slack.messages((r) => r.seq > since && r.method === 'files.completeUploadExternal').length >= 10, 30_000, 100);
    const comments = t.slack.messages((r) => r.seq > since && r.method === 'files.completeUploadExternal').map((r) => String(r.body.initial_comment));
    expect(comments.filter((c) => !c.includes('hash chain intact'))).toEqual([]);
    await t.command('incident close', { user: 'UALICE' });
  });
});
