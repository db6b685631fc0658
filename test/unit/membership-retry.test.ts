import { describe, expect, it } from 'vitest';
import { ambiguous, memberWithPeer, retryUnlessDone } from '../../src/worker/steps/etcd-steps.js';

const fast = { maxMs: 2000, startMs: 1, capMs: 5 };

describe('membership calls retried after a timeout', () => {
  it('does not add twice when the first try went through but its answer was lost', async () => {
    const list: { peerURLs: string[]; learner: boolean }[] = [];
    let calls = 0;
    const out = await retryUnlessDone(
      async () => {
        calls++;
        // The fault: the leader adds the learner, then the answer never arrives.
        list.push({ peerURLs: ['https://10.0.0.3:2380'], learner: true });
        throw new Error('14 UNAVAILABLE: deadline exceeded');
      },
      async () => memberWithPeer(list, 'https://10.0.0.3:2380') ?? null,
      ambiguous,
      fast,
    );
    expect(calls).toBe(1);
    expect(list).toHaveLength(1);
    expect('done' in out && out.done.learner).toBe(true);
  });

  it('tries again when the list shows the first try did not take effect', async () => {
    let calls = 0;
    const out = await retryUnlessDone(
      async () => {
        if (++calls === 1) throw new Error('etcdserver: request timed out');
        return 'added';
      },
      async () => null,
      ambiguous,
      fast,
    );
    expect(out).toEqual({ result: 'added', tries: 2 });
  });

  it('looks only before a retry, never before the first try, and gives up on a clear refusal', async () => {
    let checks = 0;
    await expect(
      retryUnlessDone(
        async () => {
          throw new Error('etcdserver: peerURL exists');
        },
        async () => {
          checks++;
          return null;
        },
        ambiguous,
        fast,
      ),
    ).rejects.toThrow('peerURL exists');
    expect(checks).toBe(0);
  });

  it('tells an ambiguous error from a clear one', () => {
    for (const m of ['deadline exceeded', '14 UNAVAILABLE: Connection dropped', 'socket closed', 'read ECONNRESET', 'etcdserver: request timed out']) expect(ambiguous(new Error(m))).toBe(true);
    for (const m of ['etcdserver: peerURL exists', 'etcdserver: member not found', 'etcdserver: can only promote a learner member which is in sync with leader']) expect(ambiguous(new Error(m))).toBe(false);
  });
});
