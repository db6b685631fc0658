import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterConfig } from '../../src/config/schema.js';
import type { MemberRow } from '../../src/status/assess.js';
import { memberQuotas, quotaText, type DefragStepContext } from '../../src/worker/steps/defrag-steps.js';

describe('memberQuotas: a member that does not say its quota is held to the inventory, and the step says so', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    // Something on the member's client URL that serves no metrics (a proxy in front of etcd that passes only gRPC, say).
    server = createServer((req, res) => {
      if (req.url === '/metrics' && req.headers.host?.startsWith('localhost')) {
        res.end('etcd_server_quota_backend_bytes 6.291456e+06\n');
        return;
      }
      res.statusCode = 404;
      res.end('404 page not found\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('one member tells, one answers 404, one refuses the connection: each quota and where it came from', async () => {
    const port = (server.address() as AddressInfo).port;
    const tells = `http://localhost:${port}`;
    const closed = 'http://127.0.0.1:1';
    const cluster = { name: 'c', etcd: { endpoints: [tells, url, closed], callTimeoutMs: 2000 } } as unknown as ClusterConfig;
    const row = (name: string, u: string) => ({ name, clientURLs: [u] }) as MemberRow;
    const quotas = await memberQuotas({ cluster } as DefragStepContext, [row('m1', tells), row('m2', url), row('m3', closed)], 8 * 1024 ** 3);
    expect(quotas.map((q) => q.bytes)).toEqual([6_291_456, 8 * 1024 ** 3, 8 * 1024 ** 3]);
    expect(quotaText(quotas[0]!)).toBe('6.0 MB, as m1 runs with');
    expect(quotaText(quotas[1]!)).toBe(`8.0 GB, etcd.quotaBytes in the inventory: m2's own could not be read (${url}/metrics answered HTTP 404)`);
    expect(quotaText(quotas[2]!)).toMatch(/^8\.0 GB, etcd\.quotaBytes in the inventory: m3's own could not be read \(.*ECONNREFUSED/);
  });
});
