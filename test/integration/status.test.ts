import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ackText, postSigned, slashCommandBody } from '../../src/lab/signed-requests.js';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import { waitForStatusAnswer } from '../../src/lab/slack-view.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';

/** All the text of a posted message, blocks included, as a person reads it. */
function messageText(r: SlackRecord): string {
  const blocks = (r.body.blocks as { text?: { text?: string }; elements?: { text?: string }[] }[]) ?? [];
  return blocks.map((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text ?? '')].join('\n')).join('\n');
}

const isStatusPost = (r: SlackRecord) => r.kind === 'api' && r.method === 'chat.postMessage' && String(r.body.text).startsWith('etcd lab:');

describe('/etcd status against the lab', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('status', 31);
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** The status message with its verdict (when a member was slow, after a progress message redrawn in place). */
  async function statusPost(): Promise<{ ack: string; post: SlackRecord }> {
    const since = t.slack.lastSeq;
    const res = await t.command('status');
    expect(res.status).toBe(200);
    const { final } = await waitForStatusAnswer(t.slack, 'lab', 20_000, since);
    return { ack: ackText(res.body), post: final };
  }

  it('acks, then posts one message listing every member with the hex IDs etcdctl prints and the leader marked', async () => {
    const { ack, post } = await statusPost();
    expect(ack).toMatch(/Checking every member of \*lab\*.*job `status-[0-9a-f]{8}`/);
    expect(post.body.channel).toBe('CINCIDENT');

    const text = messageText(post);
    const members = await t.lab.memberList();
    expect(members).toHaveLength(3);
    for (const m of members) {
      // Each member's row carries its name and the same hex ID etcdctl shows.
      expect(text).toContain(`*${m.name}* \`${m.id}\``);
    }
    const leader = await t.lab.leaderHex();
    const leaderRow = text.split('\n').find((l) => l.includes(`\`${leader}\``));
    expect(leaderRow).toContain('*leader*');
    expect(text.match(/\*leader\*/g)).toHaveLength(1);
    expect(String(post.body.text)).toContain('HEALTHY');
    expect(text).toMatch(/term \d+ · index \d+ · applied \d+ · db [\d.]+ [KM]?B \(in use [\d.]+ [KM]?B\) · v3\.4\.\d+/);
    // Exactly one channel message for one command.
    expect(t.slack.messages((r) => r.seq > post.seq - 1 && isStatusPost(r))).toHaveLength(1);
  });

  it('with one member stopped says DEGRADED and names the member unreachable', async () => {
    await t.lab.stopMember('m3');
    try {
      const { post } = await statusPost();
      const text = messageText(post);
      expect(String(post.body.text)).toContain('DEGRADED (can lose 0 more)');
      const m3Row = text.slice(text.indexOf('*m3*'));
      expect(m3Row).toMatch(/^\*m3\* `[0-9a-f]+` · voter · started\n.*\n:x: \*unreachable\* \(refused\)/);
      expect(text).toContain('`/etcd replace m3`');
      expect(text).toContain('m3 (');
    } finally {
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  });

  it('with two members stopped says QUORUM LOST and still posts every member', async () => {
    await t.lab.killMember('m2');
    await t.lab.killMember('m3');
    try {
      const { post } = await statusPost();
      const text = messageText(post);
      expect(String(post.body.text)).toContain('QUORUM LOST');
      expect(text).toContain('`/etcd restore-quorum`');
      for (const name of ['m1', 'm2', 'm3']) expect(text).toContain(`*${name}*`);
      // The survivor still answers with its raft figures; the other two are unreachable.
      expect(text.match(/:x: \*unreachable\*/g)).toHaveLength(2);
      expect(text).toMatch(/\*m1\*[^\n]*\n[^\n]*\n:white_check_mark: reachable · term \d+/);
      // Right after the kill the survivor may still name a dead leader: it must not be starred as healthy.
      expect(text).not.toMatch(/:star: \*m[23]\*/);
    } finally {
      await t.lab.startMember('m2');
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  });

  it('rejects a request with a bad signature or a stale timestamp', async () => {
    const body = slashCommandBody({ text: 'status', userId: 'UMALLORY', channelId: 'CINCIDENT', responseUrl: t.slack.responseUrl('forged') });
    const since = t.slack.lastSeq;
    const forged = await postSigned(t.eventsUrl, 'not-the-secret', body);
    expect(forged.status).toBe(401);
    const stale = await postSigned(t.eventsUrl, t.secret, body, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(stale.status).toBe(401);
    // Neither reached a worker: a genuine request after them is the only thing posted.
    const ok = await t.command('status');
    expect(ok.status).toBe(200);
    await t.slack.waitFor(isStatusPost, 20_000, since);
    expect(t.slack.messages((r) => r.seq > since && r.kind === 'api' && r.method === 'chat.postMessage')).toHaveLength(1);
  });

  it('answers an unknown cluster, a malformed argument and an unknown subcommand with what was wrong and the usage', async () => {
    const unknown = ackText((await t.command('status prod-eu')).body);
    expect(unknown).toContain('Unknown cluster `prod-eu`');
    expect(unknown).toContain('Known clusters: `lab`');
    expect(unknown).toContain('Usage: `/etcd status [cluster]`');

    const malformed = ackText((await t.command('status lab extra')).body);
    expect(malformed).toContain('unexpected argument "extra"');
    expect(malformed).toContain('Usage: `/etcd status [cluster]`');

    const hostile = ackText((await t.command('status $(reboot)')).body);
    expect(hostile).toContain('is not a cluster name');

    const sub = ackText((await t.command('statsu')).body);
    expect(sub).toContain('Unknown subcommand `statsu`');
    expect(sub).toContain('/etcd help');

    const help = ackText((await t.command('help')).body);
    expect(help).toContain('`/etcd status [cluster]`');
  });

  it('serves /readyz with Redis up and a live worker, and /healthz', async () => {
    const res = await fetch(t.eventsUrl.replace('/slack/events', '/readyz'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, redis: 'up', workers: 1 });
    expect((await fetch(t.eventsUrl.replace('/slack/events', '/healthz'))).status).toBe(200);
  });
});
