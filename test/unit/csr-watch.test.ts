import { describe, expect, it } from 'vitest';
import { CsrWatch, reviveCsr, type CsrWatchEvent, type CsrWatchTransport } from '../../src/kube/csr-watch.js';
import type { Csr } from '../../src/kube/csrs.js';
import { KubeError } from '../../src/kube/errors.js';

const csr = (name: string, rv: number): Csr => ({ metadata: { name, resourceVersion: String(rv) }, spec: { request: 'UEVN', signerName: 'kubernetes.io/kube-apiserver-client-kubelet' } });

type Line = [type: string, obj: unknown];
/** What one watch connection does: the lines it sends, then how it ends. */
interface Connection {
  lines: Line[];
  end: 'clean' | 'hold' | KubeError;
}

/**
 * A transport that plays a script: the lists in order, and the watch connections
 * in order; it records the resourceVersion each list/watch was asked from.
 */
function scripted(lists: { items: Csr[]; resourceVersion: string }[], connections: Connection[]) {
  const watchedFrom: string[] = [];
  let listed = 0;
  let aborted = 0;
  const transport: CsrWatchTransport = {
    async list() {
      const l = lists[listed++];
      if (!l) throw new KubeError('refused', 'no more lists in the script');
      return l;
    },
    async watch(rv, onEvent, done) {
      watchedFrom.push(rv);
      const c = connections[watchedFrom.length - 1] ?? { lines: [], end: 'hold' };
      let ended = false;
      setImmediate(() => {
        for (const [t, o] of c.lines) if (!ended) onEvent(t, o);
        if (c.end === 'clean') done(null);
        else if (c.end !== 'hold') done(c.end);
      });
      return {
        abort: () => {
          ended = true;
          aborted += 1;
        },
      };
    },
  };
  return { transport, watchedFrom, lists: () => listed, aborted: () => aborted };
}

async function until(what: string, cond: () => boolean, ms = 2000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const names = (events: CsrWatchEvent[]) => events.map((e) => `${e.type} ${e.csr.metadata?.name}@${e.csr.metadata?.resourceVersion}`);

describe('the CSR watch', () => {
  it('lists, watches from the list, resumes from the last resourceVersion after a drop, and re-lists on 410', async () => {
    const s = scripted(
      [
        { items: [csr('a', 10), csr('b', 11)], resourceVersion: '12' },
        // After 410: b is gone, c unchanged, d new, a unchanged.
        { items: [csr('a', 14), csr('c', 13), csr('d', 20)], resourceVersion: '21' },
      ],
      [
        // The connection drops (reset) after two events.
        { lines: [['ADDED', csr('c', 13)], ['MODIFIED', csr('a', 14)]], end: new KubeError('refused', 'connection reset by 10.0.0.1:6443') },
        // Resumed from 14: a bookmark moves the version on, then the server ends the watch (its timeoutSeconds).
        { lines: [['BOOKMARK', { metadata: { resourceVersion: '15' } }]], end: 'clean' },
        // From 15: too old by now.
        { lines: [['ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 15 (19)' }]], end: 'hold' },
        { lines: [['ADDED', csr('e', 22)]], end: 'hold' },
      ],
    );
    const events: CsrWatchEvent[] = [];
    const errors: string[] = [];
    const watching: string[] = [];
    const w = new CsrWatch(s.transport, { onEvent: (e) => events.push(e), onError: (e) => errors.push(e.reason), onWatching: (rv) => watching.push(rv), backoffMs: { initial: 1, max: 2 } });
    w.start();
    await until('the event after the re-list', () => events.some((e) => e.csr.metadata?.name === 'e'));
    await w.stop();

    expect(s.watchedFrom).toEqual(['12', '14', '15', '21']);
    expect(s.lists()).toBe(2);
    expect(errors).toEqual(['connection reset by 10.0.0.1:6443']);
    // Each CSR reported ADDED once; the re-list reports only what changed while nobody watched.
    expect(names(events)).toEqual(['ADDED a@10', 'ADDED b@11', 'ADDED c@13', 'MODIFIED a@14', 'DELETED b@11', 'ADDED d@20', 'ADDED e@22']);
    expect(w.resourceVersion).toBe('22');
    expect(watching).toContain('21');
  });

  it('a watch answered 410 at once (HTTP status) lists again', async () => {
    const s = scripted(
      [
        { items: [csr('a', 1)], resourceVersion: '5' },
        { items: [csr('a', 1), csr('b', 7)], resourceVersion: '8' },
      ],
      [{ lines: [], end: new KubeError('gone', 'gone (410): resourceVersion too old', 410) }],
    );
    const events: CsrWatchEvent[] = [];
    const errors: string[] = [];
    const w = new CsrWatch(s.transport, { onEvent: (e) => events.push(e), onError: (e) => errors.push(e.reason), backoffMs: { initial: 1, max: 2 } });
    w.start();
    await until('the second watch', () => s.watchedFrom.length === 2);
    await w.stop();
    expect(s.watchedFrom).toEqual(['5', '8']);
    expect(names(events)).toEqual(['ADDED a@1', 'ADDED b@7']);
    expect(errors).toEqual([]);
  });

  it('a connection that goes quiet beyond the idle bound is ended and resumed from where it was', async () => {
    const s = scripted([{ items: [], resourceVersion: '3' }], [{ lines: [['ADDED', csr('a', 4)]], end: 'hold' }]);
    const events: CsrWatchEvent[] = [];
    const w = new CsrWatch(s.transport, { onEvent: (e) => events.push(e), idleMs: 50, backoffMs: { initial: 1, max: 2 } });
    w.start();
    await until('a second watch', () => s.watchedFrom.length >= 2);
    await w.stop();
    expect(s.watchedFrom.slice(0, 2)).toEqual(['3', '4']);
    expect(s.aborted()).toBeGreaterThanOrEqual(1);
    expect(names(events)).toEqual(['ADDED a@4']);
  });

  it('stop ends the open connection and no event is reported after it', async () => {
    const s = scripted([{ items: [csr('a', 1)], resourceVersion: '2' }], [{ lines: [], end: 'hold' }]);
    const events: CsrWatchEvent[] = [];
    const w = new CsrWatch(s.transport, { onEvent: (e) => events.push(e) });
    w.start();
    await until('the watch to open', () => s.watchedFrom.length === 1);
    await w.stop();
    expect(s.aborted()).toBe(1);
    expect(names(events)).toEqual(['ADDED a@1']);
  });

  it('gives watched objects the Date fields listed ones have', () => {
    const raw = { metadata: { name: 'x', creationTimestamp: '2026-11-24T10:00:00Z' }, spec: { request: '', signerName: '' }, status: { conditions: [{ type: 'Approved', status: 'True', lastUpdateTime: '2026-11-24T10:01:00Z' }] } };
    const c = reviveCsr(raw as unknown as Csr);
    expect(c.metadata?.creationTimestamp).toEqual(new Date('2026-11-24T10:00:00Z'));
    expect(c.status?.conditions?.[0]?.lastUpdateTime).toEqual(new Date('2026-11-24T10:01:00Z'));
  });
});
