import { describe, expect, it } from 'vitest';
import { ETCD_DEFAULT_QUOTA_BYTES, quotaInMetrics } from '../../src/etcd/quota.js';

// Lines as etcd 3.4.23 prints them on /metrics (seen with --quota-backend-bytes=6291456, unset, and -1).
const page = (value: string) =>
  [
    '# HELP etcd_server_proposals_committed_total The total number of consensus proposals committed.',
    '# TYPE etcd_server_proposals_committed_total gauge',
    'etcd_server_proposals_committed_total 64',
    '# HELP etcd_server_quota_backend_bytes Current backend storage quota size in bytes.',
    '# TYPE etcd_server_quota_backend_bytes gauge',
    `etcd_server_quota_backend_bytes ${value}`,
    'etcd_server_quota_backend_bytes_total_bogus 1',
  ].join('\n');

describe('quotaInMetrics: the quota a member runs with, from its own metrics', () => {
  it('reads the gauge as etcd prints it, in exponent notation', () => {
    expect(quotaInMetrics(page('6.291456e+06'))).toBe(6_291_456);
    expect(quotaInMetrics(page('2.147483648e+09'))).toBe(ETCD_DEFAULT_QUOTA_BYTES);
  });

  it('a negative quota (etcd started with the quota off) is no limit; 0 is etcd default', () => {
    expect(quotaInMetrics(page('-1'))).toBe(Infinity);
    expect(quotaInMetrics(page('0'))).toBe(ETCD_DEFAULT_QUOTA_BYTES);
  });

  it('says nothing (null) when the gauge is missing or not a number, rather than guess', () => {
    expect(quotaInMetrics('etcd_server_proposals_committed_total 64\n# HELP etcd_server_quota_backend_bytes x\n')).toBeNull();
    expect(quotaInMetrics(page('NaN'))).toBeNull();
    expect(quotaInMetrics('')).toBeNull();
  });
});
