import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { SlackPoster, WORKER_WEB_API } from '../../src/slack/poster.js';
import { registry } from '../../src/metrics/registry.js';

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
