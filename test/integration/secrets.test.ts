import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import { connectRedis } from '../../src/queue/redis.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, replaceWithApprovals, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };

// What a user might paste by mistake: a bot token and a private key (fake, but shaped like real ones).
const FAKE_TOKEN = `xoxb-${Date.now()}-${randomBytes(6).toString('hex')}-${randomBytes(12).toString('base64url')}`;
const FAKE_KEY_LINES = Array.from({ length: 8 }, () => randomBytes(48).toString('base64'));
const FAKE_KEY = ['-----BEGIN OPENSSH PRIVATE KEY-----', ...FAKE_KEY_LINES, '-----END OPENSSH PRIVATE KEY-----'].join('\n');

describe('secrets in a failing run at LOG_LEVEL=debug', () => {
  let t: MedicLab;
  let redis: ReturnType<typeof connectRedis>;

  beforeAll(async () => {
    t = await startMedicLab('secrets', 70, {
      roles: ROLES,
      logLevel: 'debug',
    });
    redis = connectRedis(t.config.settings.redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  it('are absent from the logs, every Slack record, the uploads and the timeline', async () => {
    const start = await t.command(`incident start key leak drill ${FAKE_TOKEN}`, { user: 'UALICE' });
    await answerAt(t.slack, start.responseUrl);
    // A user pastes a token and a private key into notes (the key with its newlines, as Slack sends them).
    await answerAt(t.slack, (await t.command(`note oops here is the bot token ${FAKE_TOKEN} sorry`, { user: 'UCAROL' })).responseUrl);
    await answerAt(t.slack, (await t.command(`note and the ssh key:\n${FAKE_KEY}\nplease rotate`, { user: 'UCAROL' })).responseUrl);
    // …and one as a cluster name, which the answer echoes.
    const echoed = await t.command(`status ${FAKE_TOKEN.toLowerCase()}`, { user: 'UCAROL' });
    expect(echoed.body).toContain('[secret masked]');

    // The fault that makes the run fail half-way: m3's sha256sum is broken. It is on the PATH, so the host
    // check before each destructive step passes; the step that reads m3's manifest back (step 5) fails.
    const broken = join(t.lab.host('m3').binDir, 'sha256sum');
    writeFileSync(broken, '#!/bin/sh\necho "sha256sum: read error: input/output error" >&2\nexit 1\n', { mode: 0o755 });
    const ts = await replaceWithApprovals(t, 'm3', { requester: 'UALICE', approver: 'UBOB' });
    await waitForRunStatus(t.slack, ts, 'FAILED');

    const store = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
    const inc = (await store.current('CINCIDENT'))!;
    await waitFor('the mirror to catch up', async () => (await store.mirroredUpTo(inc.id)) >= (await store.entries(inc.id)).length, 20_000, 200);
    const since = t.slack.lastSeq;
    await t.command('timeline', { user: 'UCAROL' });
    const upload = await t.slack.waitFor((r) => r.method === 'files.completeUploadExternal', 15_000, since);
    const md = (upload.body.contents as string[]).join('');
    expect(md).toContain('oops here is the bot token [secret masked] sorry');
    expect(md).toContain('[secret masked] (private key)');
    expect(md).toContain('hash chain intact');

    const entries = await store.entries(inc.id);
    expect(entries.some((e) => e.kind === 'step' && /Step 5 \(.*\) failed: /.test(e.text))).toBe(true);
    expect(t.logs.some((l) => l.includes('"level":20'))).toBe(true); // debug lines were written

    const secrets = [
      t.config.settings.slack.botToken!,
      t.secret,
      t.config.settings.hmacKey,
      FAKE_TOKEN,
      FAKE_TOKEN.toLowerCase(),
      ...FAKE_KEY_LINES,
      readFileSync(t.lab.sshKey, 'utf8').split('\n').slice(1, -2).join(''),
      readFileSync(t.lab.tls.key, 'utf8').split('\n').slice(1, -2).join(''),
    ];
    const written = {
      logs: t.logs.join(''),
      slack: JSON.stringify(t.slack.records),
      uploads: [...t.slack.uploads.values()].join(''),
      timeline: JSON.stringify(entries) + JSON.stringify(inc),
    };
    for (const [where, text] of Object.entries(written)) {
      const flat = text.replace(/\\n|\n|\\\\n/g, '');
      for (const s of secrets) {
        expect(s.length).toBeGreaterThan(20);
        expect(flat.includes(s.slice(0, 24)), `${where} contains ${s.slice(0, 8)}…`).toBe(false);
      }
    }
  });
});
