import { describe, expect, it } from 'vitest';
import { decodeWatchState, encodeWatchState, watchChange, watchFingerprint, type WatchState } from '../../src/status/watch-state.js';

const healthy: WatchState = { verdict: 'HEALTHY', alarms: [], diagnoses: [] };
const m3Down: WatchState = { verdict: 'DEGRADED', alarms: [], diagnoses: [{ key: 'replace:m3:down', title: 'Replace m3' }] };

describe('what the proactive watch posts', () => {
  it.each([
    { name: 'first look at a healthy cluster: nothing', prev: null, next: healthy, post: false, what: 'first look: HEALTHY' },
    { name: 'first look at a degraded cluster: posts', prev: null, next: m3Down, post: true, what: 'first look: DEGRADED' },
    { name: 'nothing changed: nothing', prev: m3Down, next: m3Down, post: false, what: 'no change' },
    { name: 'HEALTHY → DEGRADED', prev: healthy, next: m3Down, post: true, what: 'HEALTHY → DEGRADED · new: Replace m3' },
    { name: 'back to HEALTHY', prev: m3Down, next: healthy, post: true, what: 'DEGRADED → HEALTHY · no longer: Replace m3' },
    {
      name: 'a new alarm, verdict unchanged',
      prev: m3Down,
      next: { ...m3Down, alarms: ['NOSPACE on m1'], diagnoses: [...m3Down.diagnoses, { key: 'defrag:nospace', title: 'Compact and defragment' }] },
      post: true,
      what: 'new alarm NOSPACE on m1 · new: Compact and defragment',
    },
    {
      name: 'a certificate crossing 7 days',
      prev: healthy,
      next: { ...healthy, diagnoses: [{ key: 'renew-certs:kubelet:within-7d', title: 'Renew kubelet certificates' }] },
      post: true,
      what: 'new: Renew kubelet certificates',
    },
    {
      name: 'the same fault with another title (one more CSR of the same node): nothing',
      prev: { ...healthy, diagnoses: [{ key: 'review-csrs:m2', title: 'Review 1 pending CSR' }] },
      next: { ...healthy, diagnoses: [{ key: 'review-csrs:m2', title: 'Review 2 pending CSRs' }] },
      post: false,
      what: 'no change',
    },
  ])('$name', ({ prev, next, post, what }) => {
    expect(watchChange(prev, next)).toEqual({ post, what });
  });

  it('keeps a state in Redis form and reads it back', () => {
    const s = { ...m3Down, alarms: ['NOSPACE on m1'] };
    expect(decodeWatchState(encodeWatchState(s))).toEqual(s);
    expect(decodeWatchState('not json')).toBeNull();
    expect(watchFingerprint(s)).toBe(watchFingerprint({ ...s, diagnoses: [{ key: 'replace:m3:down', title: 'other words' }] }));
  });
});
