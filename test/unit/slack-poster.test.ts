import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { SlackPoster, WORKER_WEB_API } from '../../src/slack/poster.js';
import { registry } from '../../src/metrics/registry.js';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { registerSecrets } from '../../src/secrets/mask.js';

describe('Slack Web API calls from a worker', () => {
  let server: Server;
  let url: string;
  let calls = 0;

  beforeAll(async () => {
    // The fault: a Slack API that accepts the connection and never answers.
    server = createServer(() => void calls++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('give up after a per-request timeout and a bounded number of retries', async () => {
    const poster = new SlackPoster('xoxb-test', url, createLogger('silent'), { timeout: 300, retryConfig: { retries: 2, factor: 1, minTimeout: 50, maxTimeout: 50 } });
    const counted = async () => (await registry.getSingleMetricAsString('etcd_medic_slack_api_retries_total')) + (await registry.getSingleMetricAsString('etcd_medic_slack_api_errors_total'));
    const t0 = Date.now();
    await expect(poster.post('CINCIDENT', { text: 'hello', blocks: [] })).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(calls).toBe(3);
    // The metrics see both retries and the call that failed for good.
    expect(await counted()).toContain('etcd_medic_slack_api_retries_total 2');
    expect(await counted()).toMatch(/etcd_medic_slack_api_errors_total\{method="chat.postMessage",error="[^"]+"\} 1/);
  });

  it('are bounded by default too', () => {
    expect(WORKER_WEB_API.timeout).toBeGreaterThan(0);
    expect(WORKER_WEB_API.retryConfig.retries).toBeLessThanOrEqual(5);
  });
});

describe('the Slack poster, as the chat port in production', () => {
  const slack = new FakeSlack();
  let poster: SlackPoster;
  const SECRET = 'hunter2-but-longer-than-eight';
  const TOKEN = `xoxb-${'2'.repeat(12)}-${'b'.repeat(24)}`;
  const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
  const dirty = `deploy used ${SECRET} and ${TOKEN}\n${KEY}`;

  beforeAll(async () => {
    await slack.start();
    registerSecrets(SECRET);
    poster = new SlackPoster('xoxb-test', slack.apiUrl, createLogger('silent'));
  });
  afterAll(() => slack.stop());

  it('masks secrets on every path: answer, post, thread, update, ephemeral, upload', async () => {
    const msg = { text: dirty, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: dirty } }] };
    const to = { channel: 'CMASK', requester: 'UALICE', responseUrl: slack.responseUrl('mask') };
    const { ts } = await poster.answer(to, msg);
    await poster.post('CMASK', msg);
    await poster.post('CMASK', msg, ts);
    await poster.update('CMASK', ts!, msg);
    expect(await poster.ephemeral(to, dirty)).toBe(true);
    await poster.upload({ channel: 'CMASK', threadTs: ts, filename: 'postmortem.md', title: dirty.slice(0, 40), content: dirty, comment: dirty });
    const sent = JSON.stringify(slack.records) + [...slack.uploads.values()].join('');
    expect(slack.records.map((r) => r.method)).toEqual(['chat.postMessage', 'chat.postMessage', 'chat.postMessage', 'chat.update', 'mask', 'files.completeUploadExternal']);
    for (const s of [SECRET, TOKEN, 'b3BlbnNzaC1rZXktdjEAAAAA']) expect(sent).not.toContain(s);
    expect(sent.split('[secret masked]').length - 1).toBeGreaterThanOrEqual(6 * 2);
  });

  it('answers through the response_url where the bot is not in the channel, and says an ephemeral without one reached nobody', async () => {
    // The fault: Slack refuses the bot's post, as in a channel nobody invited it to.
    slack.methods.set('chat.postMessage', (body) => (body.channel === 'CNOTIN' ? { ok: false, error: 'not_in_channel' } : { ok: true, ts: '1.000001' }));
    try {
      const since = slack.lastSeq;
      const res = await poster.answer({ channel: 'CNOTIN', requester: 'UALICE', responseUrl: slack.responseUrl('notin') }, { text: 'HEALTHY', blocks: [] });
      expect(res).toEqual({ via: 'response_url' });
      expect(slack.records.filter((r) => r.seq > since)).toEqual([expect.objectContaining({ kind: 'response_url', method: 'notin', body: expect.objectContaining({ response_type: 'in_channel', text: 'HEALTHY' }) })]);
      await expect(poster.answer({ channel: 'CNOTIN', requester: 'UALICE' }, { text: 'HEALTHY', blocks: [] })).rejects.toThrow(/not_in_channel/);
    } finally {
      slack.methods.delete('chat.postMessage');
    }
    const since = slack.lastSeq;
    expect(await poster.ephemeral({ channel: 'CMASK', requester: 'UALICE' }, 'only for you')).toBe(false);
    expect(slack.lastSeq).toBe(since);
  });
});
