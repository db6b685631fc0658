import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import type { EndpointProbe, ProbedMember } from '../../src/etcd/probe.js';
import type { ReplyTo } from '../../src/chat/port.js';
import { blockLimitViolations } from '../../src/render/block-limits.js';
import type { SlackMessage } from '../../src/render/status-message.js';
import { renderStatusProgress } from '../../src/render/status-progress.js';
import { statusProgress } from '../../src/status/progress.js';
import { ProgressiveMessage, type ProgressChat } from '../../src/worker/progressive-message.js';

const FP = 'SHA256:' + 'A'.repeat(43);
function clusterOf(n: number, callTimeoutMs = 2000) {
  const ips = Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}`);
  return parseInventory(
    `clusters:
  - name: prod
    etcd: { endpoints: [${ips.map((ip) => `"https://${ip}:2379"`).join(', ')}], callTimeoutMs: ${callTimeoutMs} }
    members:
${ips.map((ip, i) => `      - { name: m${i + 1}, host: ${ip}, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${FP} } }`).join('\n')}
`,
    'test.yaml',
  ).clusters[0]!;
}

const ID = (i: number) => (BigInt('0x8e9e05c52164694d') + BigInt(i)).toString();
const members = (n: number): ProbedMember[] =>
  Array.from({ length: n }, (_, i) => ({ id: ID(i), name: `m${i + 1}`, peerURLs: [`https://10.0.0.${i + 1}:2380`], clientURLs: [`https://10.0.0.${i + 1}:2379`], isLearner: false }));
function up(i: number, n: number, leader = ID(0)): EndpointProbe {
  return {
    endpoint: `https://10.0.0.${i + 1}:2379`,
    ok: true,
    tookMs: 3,
    members: members(n),
    status: { memberId: ID(i), clusterId: '1234567890123456789', revision: 42, version: '3.4.23', dbSize: 20480, dbSizeInUse: 16384, leader, raftIndex: 500, raftTerm: 3, raftAppliedIndex: 500, isLearner: false, errors: [] },
  };
}
const refused = (i: number): EndpointProbe => ({ endpoint: `https://10.0.0.${i + 1}:2379`, ok: false, tookMs: 1, error: { kind: 'refused', message: 'connection refused' } });

const startedAt = new Date('2026-11-27T03:00:00Z');
const text = (m: SlackMessage) => [m.text, ...m.blocks.map((b) => JSON.stringify(b))].join('\n');
const VERDICTS = /HEALTHY|DEGRADED|QUORUM.LOST|UNREACHABLE/;

describe('statusProgress and its rendering: what is known before the verdict', () => {
  it('one member answered, two still asked: their names and the deadline, the answer as given, no verdict', () => {
    // m1 still names itself leader, as a leader cut off from its peers does until it steps down.
    const p = statusProgress(clusterOf(3), [up(0, 3)], { startedAt });
    expect(p.waiting).toEqual(['m2', 'm3']);
    expect(p.rows.map((r) => [r.name, r.state])).toEqual([['m1', 'answered'], ['m2', 'waiting'], ['m3', 'waiting']]);

    const msg = renderStatusProgress(p, 'asked by <@UALICE> · job status-1');
    expect(msg.text).toBe('etcd prod: checking, waiting for m2 and m3 (deadline 2 s)');
    const all = text(msg);
    expect(all).not.toMatch(VERDICTS);
    expect(all).toContain('*No verdict yet*: waiting for m2 and m3 (deadline 2 s). So far m1 answered.');
    // m1's figures are shown; its alarms are not known yet, and its claim to lead is not starred.
    expect(all).toContain('*m1* `8e9e05c52164694d` · voter · started');
    expect(all).toContain('term 3 · index 500 · applied 500');
    expect(all).toContain('alarms: not read yet');
    expect(all).toContain('leader as m1 sees it: `8e9e05c52164694d`');
    expect(all).not.toContain(':star:');
    expect(all).toContain('*m2* · client https://10.0.0.2:2379\\nasked, no answer yet (deadline 2 s)');
    expect(all).toContain('asked by <@UALICE> · job status-1');
    expect(blockLimitViolations(msg.blocks)).toEqual([]);
  });

  it('nothing answered yet: every member waiting', () => {
    const msg = renderStatusProgress(statusProgress(clusterOf(3, 1500), [], { startedAt }), 'f');
    expect(msg.text).toBe('etcd prod: checking, waiting for m1, m2 and m3 (deadline 1.5 s)');
    expect(text(msg)).toContain('So far no member has answered yet.');
  });

  it('a refused member is shown unreachable beside the ones still asked, still without a verdict', () => {
    const p = statusProgress(clusterOf(3), [refused(1), up(0, 3, '0')], { startedAt });
    expect(p.waiting).toEqual(['m3']);
    const all = text(renderStatusProgress(p, 'f'));
    expect(all).toContain('So far m1 answered; m2 could not be reached.');
    expect(all).toContain(':x: *unreachable* (refused): connection refused');
    expect(all).toContain('m1 knows no leader');
    expect(all).not.toMatch(VERDICTS);
  });

  it('every member settled but the alarm list pending: waits for the alarm list', () => {
    const p = statusProgress(clusterOf(3), [up(0, 3), up(1, 3), up(2, 3)], { startedAt, alarmsPending: true });
    expect(p.waiting).toEqual(['the alarm list']);
    expect(renderStatusProgress(p, 'f').text).toBe('etcd prod: checking, waiting for the alarm list (deadline 2 s)');
  });

  it('an election in progress is said, not judged', () => {
    const note = '2 of 3 voting members answer but none knows a leader: an election is probably running.';
    const p = statusProgress(clusterOf(3), [up(0, 3, '0'), up(1, 3, '0'), refused(2)], { startedAt, note });
    const all = text(renderStatusProgress(p, 'f'));
    expect(all).toContain(note);
    expect(all).toContain('judging what the members said');
    expect(all).not.toMatch(VERDICTS);
  });

  it('a large cluster stays within Block Kit limits', () => {
    const n = 60;
    const p = statusProgress(clusterOf(n), Array.from({ length: 30 }, (_, i) => up(i, n)), { startedAt });
    const msg = renderStatusProgress(p, 'f');
    expect(blockLimitViolations(msg.blocks)).toEqual([]);
    expect(p.waiting).toHaveLength(30);
  });
});

/** A chat that records what was drawn, in order; calls take `latencyMs` (fake time). */
function fakeChat(latencyMs = 20) {
  const calls: { op: 'answer' | 'post' | 'update'; text: string; ts?: string }[] = [];
  const fail = { post: false, update: false };
  const later = <T>(v: () => T) => new Promise<T>((resolve, reject) => setTimeout(() => {
    try {
      resolve(v());
    } catch (e) {
      reject(e);
    }
  }, latencyMs));
  const chat: ProgressChat = {
    answer: (_to, msg) => later(() => (calls.push({ op: 'answer', text: msg.text }), { ts: 'T-final', via: 'chat' as const })),
    post: (_ch, msg) => later(() => {
      if (fail.post) throw new Error('not_in_channel');
      calls.push({ op: 'post', text: msg.text });
      return 'T1';
    }),
    update: (_ch, ts, msg) => later(() => {
      if (fail.update) throw new Error('message_not_found');
      calls.push({ op: 'update', text: msg.text, ts });
    }),
  };
  return { chat, calls, fail };
}
const env: ReplyTo = { channel: 'CINCIDENT', requester: 'UALICE', responseUrl: 'http://127.0.0.1:9/response/1' };
const m = (t: string): SlackMessage => ({ text: t, blocks: [] });

describe('ProgressiveMessage: one message, redrawn until the verdict', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('an answer within the grace is posted once, with no progress message before it', async () => {
    const { chat, calls } = fakeChat();
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300 });
    pm.show(m('waiting for m1, m2 and m3'));
    await vi.advanceTimersByTimeAsync(100);
    const done = pm.finish(m('HEALTHY'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(await done).toEqual({ ts: 'T-final', via: 'chat', updated: false });
    expect(calls).toEqual([{ op: 'answer', text: 'HEALTHY' }]);
  });

  it('after the grace the latest progress is posted, redrawn as it changes, and redrawn last with the verdict', async () => {
    const { chat, calls } = fakeChat();
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300, coalesceMs: 50 });
    pm.show(m('waiting for m1, m2 and m3'));
    pm.show(m('waiting for m2 and m3'));
    await vi.advanceTimersByTimeAsync(400);
    expect(calls).toEqual([{ op: 'post', text: 'waiting for m2 and m3' }]);
    // m2 and m3 run out their deadline together: one redraw, not two.
    pm.show(m('waiting for m3'));
    pm.show(m('judging'));
    await vi.advanceTimersByTimeAsync(200);
    expect(calls.slice(1)).toEqual([{ op: 'update', text: 'judging', ts: 'T1' }]);
    const done = pm.finish(m('QUORUM LOST'));
    await vi.advanceTimersByTimeAsync(200);
    expect(await done).toEqual({ ts: 'T1', updated: true });
    expect(calls.at(-1)).toEqual({ op: 'update', text: 'QUORUM LOST', ts: 'T1' });
    expect(calls.filter((c) => c.op !== 'update')).toHaveLength(1);
  });

  it('the verdict is drawn after a redraw that was in flight, never under it', async () => {
    const { chat, calls } = fakeChat(100);
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300, coalesceMs: 0 });
    pm.show(m('p1'));
    await vi.advanceTimersByTimeAsync(400); // posted at 400
    pm.show(m('p2'));
    await vi.advanceTimersByTimeAsync(10); // p2's redraw is on its way
    const done = pm.finish(m('verdict'));
    pm.show(m('p3 (late progress after the verdict)'));
    await vi.advanceTimersByTimeAsync(1000);
    await done;
    expect(calls.map((c) => c.text)).toEqual(['p1', 'p2', 'verdict']);
  });

  it('progress that came while the first post was on its way is drawn after it', async () => {
    const { chat, calls } = fakeChat(100);
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300 });
    pm.show(m('p1'));
    await vi.advanceTimersByTimeAsync(320);
    pm.show(m('p2'));
    await vi.advanceTimersByTimeAsync(500);
    expect(calls.map((c) => `${c.op} ${c.text}`)).toEqual(['post p1', 'update p2']);
    void pm.finish(m('v'));
    await vi.advanceTimersByTimeAsync(500);
  });

  it('when the redraw with the verdict fails, the verdict is posted anew', async () => {
    const { chat, calls, fail } = fakeChat();
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300 });
    pm.show(m('p1'));
    await vi.advanceTimersByTimeAsync(400);
    fail.update = true;
    const done = pm.finish(m('verdict'));
    await vi.advanceTimersByTimeAsync(400);
    expect(await done).toEqual({ ts: 'T-final', via: 'chat', updated: false });
    expect(calls.map((c) => `${c.op} ${c.text}`)).toEqual(['post p1', 'answer verdict']);
  });

  it('when the progress message cannot be posted (bot not in the channel), the verdict goes out as the answer (with its response_url fallback)', async () => {
    const { chat, calls, fail } = fakeChat();
    fail.post = true;
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300 });
    pm.show(m('p1'));
    await vi.advanceTimersByTimeAsync(400);
    pm.show(m('p2'));
    await vi.advanceTimersByTimeAsync(400);
    const done = pm.finish(m('verdict'));
    await vi.advanceTimersByTimeAsync(400);
    await done;
    expect(calls.map((c) => `${c.op} ${c.text}`)).toEqual(['answer verdict']);
  });

  it('hold(): no progress message is started once only a short wait is left', async () => {
    const { chat, calls } = fakeChat();
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300 });
    pm.show(m('p1'));
    pm.hold();
    await vi.advanceTimersByTimeAsync(500);
    expect(calls).toEqual([]);
    void pm.finish(m('v'));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.op)).toEqual(['answer']);
  });

  it('abandon(): a posted progress message is redrawn with the failure instead of promising a verdict', async () => {
    const { chat, calls } = fakeChat();
    const pm = new ProgressiveMessage(chat, env, { graceMs: 300 });
    pm.show(m('p1'));
    await vi.advanceTimersByTimeAsync(400);
    const done = pm.abandon(m('did not finish'));
    await vi.advanceTimersByTimeAsync(100);
    await done;
    expect(calls.map((c) => `${c.op} ${c.text}`)).toEqual(['post p1', 'update did not finish']);
  });
});
