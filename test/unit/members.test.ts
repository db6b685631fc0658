import { describe, expect, it } from 'vitest';
import { listenAddrsOf, peerHostMismatch } from '../../src/status/members.js';

describe('listenAddrsOf', () => {
  const m = { name: 'm2', host: '10.0.0.2' };
  it('takes address and port from the inventory endpoints and the member list', () => {
    const rows = [{ name: 'm2', peerURLs: ['https://10.0.0.2:12380'], clientURLs: ['https://10.0.0.2:12379', 'http://127.0.0.1:22379'] }];
    expect(listenAddrsOf(['https://10.0.0.1:12379', 'https://10.0.0.2:12379'], m, rows)).toEqual(['10.0.0.2:12379', '127.0.0.1:22379', '10.0.0.2:12380']);
  });
  it("falls back to etcd's default ports on the inventory host only where nothing names one", () => {
    expect(listenAddrsOf([], m)).toEqual(['10.0.0.2:2379', '10.0.0.2:2380']);
    expect(listenAddrsOf(['https://10.0.0.2:4001'], m)).toEqual(['10.0.0.2:4001', '10.0.0.2:2380']);
  });
  it('finds an unstarted member (no name yet) by its peer URL host', () => {
    expect(listenAddrsOf([], m, [{ name: '', peerURLs: ['https://10.0.0.2:7001'], clientURLs: [] }])).toEqual(['10.0.0.2:2379', '10.0.0.2:7001']);
  });
});

describe('peerHostMismatch', () => {
  it('is null when every peer URL is on the inventory host', () => {
    expect(peerHostMismatch({ name: 'm1', peerURLs: ['https://10.0.0.1:2380'] }, '10.0.0.1')).toBeNull();
    expect(peerHostMismatch({ name: 'm1', peerURLs: [] }, '10.0.0.1')).toBeNull();
  });
  it('names both hosts when they differ', () => {
    expect(peerHostMismatch({ name: 'm1', peerURLs: ['https://10.0.0.7:2380'] }, '10.0.0.1')).toBe("m1's peer URL https://10.0.0.7:2380 points at 10.0.0.7, but the inventory puts m1 on 10.0.0.1");
  });
});
