import { Watch } from '@kubernetes/client-node';
import type { KubeCluster } from './client.js';
import type { Csr } from './csrs.js';
import { listCsrs } from './csrs.js';
import { KubeError, toKubeError } from './errors.js';

export const CSR_WATCH_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

export interface CsrWatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  csr: Csr;
}

/** The two calls a watch needs; the real one goes through client-node, tests can script one. */
export interface CsrWatchTransport {
  list(): Promise<{ items: Csr[]; resourceVersion: string }>;
  /**
   * Opens a watch from `resourceVersion`. `onEvent` gets each line the server
   * sends; `done` is called once, with null when the server ended the watch
   * cleanly, or the error. Resolves to a handle that ends the watch.
   */
  watch(resourceVersion: string, onEvent: (type: string, obj: unknown) => void, done: (err: unknown) => void): Promise<{ abort(): void }>;
}

/** The real transport: a list, and client-node's Watch on the CSR collection. */
export function kubeCsrTransport(k: KubeCluster, serverTimeoutSeconds = 300): CsrWatchTransport {
  const watcher = new Watch(k.config);
  return {
    list: () => listCsrs(k),
    async watch(resourceVersion, onEvent, done) {
      try {
        // The server ends the watch after timeoutSeconds; the loop then resumes from the last
        // resourceVersion, so a connection that died silently is noticed within that bound.
        const ctl = await watcher.watch(CSR_WATCH_PATH, { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: serverTimeoutSeconds }, onEvent, (err) =>
          done(err ? toKubeError(err, k.where, k.timeoutMs) : null),
        );
        return { abort: () => ctl.abort() };
      } catch (err) {
        // Before the request was even sent (reading the kubeconfig's files).
        done(toKubeError(err, k.where, k.timeoutMs));
        return { abort: () => undefined };
      }
    },
  };
}

export interface CsrWatchOptions {
  onEvent: (e: CsrWatchEvent) => void;
  /** Each failed list or watch attempt, with its short reason; the watch keeps trying. */
  onError?: (err: KubeError) => void;
  /** A watch connection is open from this resourceVersion. */
  onWatching?: (resourceVersion: string) => void;
  /** How long without any line (event or bookmark) before a connection counts as dead; beyond the server's own timeout. */
  idleMs?: number;
  backoffMs?: { initial: number; max: number };
}

/**
 * Keeps up with every CSR of a cluster, as an informer does: list once, then
 * watch from the list's resourceVersion; after a disconnect, watch again from
 * the last resourceVersion seen (events are neither lost nor repeated); when the
 * server answers 410 Gone (that version is compacted away), list again and
 * report only what differs from what was already reported. Each CSR is reported
 * ADDED once, so a wave of CSRs is seen once however often the connection drops.
 */
export class CsrWatch {
  private rv = '';
  private readonly known = new Map<string, Csr>(); // by name: the version last reported
  private stopped = true;
  private current: { abort(): void } | null = null;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly transport: CsrWatchTransport,
    private readonly opts: CsrWatchOptions,
  ) {}

  /** The resourceVersion the next watch starts from ("" before the first list). */
  get resourceVersion(): string {
    return this.rv;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const backoff = this.opts.backoffMs ?? { initial: 500, max: 10_000 };
    let delay = backoff.initial;
    while (!this.stopped) {
      let err: unknown = null;
      let lines = 0;
      try {
        if (!this.rv) {
          const list = await this.transport.list();
          if (this.stopped) return;
          this.reconcile(list.items);
          this.rv = list.resourceVersion;
        }
        ({ err, lines } = await this.watchOnce());
      } catch (e) {
        err = e;
      }
      if (this.stopped) return;
      if (!err && lines > 0) {
        delay = backoff.initial;
        continue;
      }
      if (!err) {
        // Ended cleanly without a single line: do not hammer a server that closes every watch at once.
        await this.sleep(delay);
        delay = Math.min(delay * 2, backoff.max);
        continue;
      }
      const ke = err instanceof KubeError ? err : toKubeError(err, 'the API server', 0);
      if (ke.kind === 'gone') {
        // The resourceVersion is too old to watch from: list again, at once.
        this.rv = '';
        continue;
      }
      this.opts.onError?.(ke);
      await this.sleep(delay);
      delay = Math.min(delay * 2, backoff.max);
    }
  }

  /** One watch connection: err null on a clean end (or one this side ended), and how many lines it brought. */
  private watchOnce(): Promise<{ err: unknown; lines: number }> {
    return new Promise((resolve) => {
      let lines = 0;
      let idle: NodeJS.Timeout | undefined;
      let endedHere = false;
      let settled = false;
      const finish = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        this.current = null;
        resolve({ err: endedHere && !(err instanceof KubeError && err.kind === 'gone') ? null : err, lines });
      };
      const end = () => {
        endedHere = true;
        handle?.abort();
        finish(null);
      };
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(end, this.opts.idleMs ?? 330_000);
        idle.unref();
      };
      let handle: { abort(): void } | null = null;
      const onLine = (type: string, obj: unknown) => {
        if (settled) return;
        lines += 1;
        armIdle();
        if (type === 'ERROR') {
          // A Status object; 410 means: list again. The server closes the watch after it.
          const code = (obj as { code?: number })?.code;
          if (code === 410) {
            this.rv = '';
            endedHere = true;
            handle?.abort();
            finish(new KubeError('gone', 'gone (410): resourceVersion too old', 410));
          }
          return;
        }
        const o = reviveCsr(obj as Csr);
        const rv = o?.metadata?.resourceVersion;
        if (rv) this.rv = rv;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.apply(type, o);
      };
      armIdle();
      this.transport
        .watch(this.rv, onLine, (err) => finish(err))
        .then((h) => {
          handle = h;
          if (settled || this.stopped) h.abort();
          else this.opts.onWatching?.(this.rv);
        }, finish);
      this.current = { abort: end };
    });
  }

  private apply(type: CsrWatchEvent['type'], csr: Csr): void {
    const name = csr.metadata?.name ?? '';
    const rv = csr.metadata?.resourceVersion ?? '';
    if (type === 'DELETED') {
      if (this.known.delete(name)) this.opts.onEvent({ type, csr });
      return;
    }
    const before = this.known.get(name);
    if (before?.metadata?.resourceVersion === rv) return; // already reported (seen again in a re-list)
    this.known.set(name, csr);
    this.opts.onEvent({ type: before === undefined ? 'ADDED' : 'MODIFIED', csr });
  }

  /** After a list: report what is new or changed, and what disappeared while nobody watched. */
  private reconcile(items: Csr[]): void {
    const names = new Set(items.map((c) => c.metadata?.name ?? ''));
    for (const [name, last] of [...this.known]) {
      if (!names.has(name)) {
        this.known.delete(name);
        this.opts.onEvent({ type: 'DELETED', csr: last });
      }
    }
    for (const c of items) this.apply('ADDED', c);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}

const toDate = (v: unknown): Date | undefined => (v === undefined || v === null ? undefined : v instanceof Date ? v : new Date(String(v)));

/**
 * A watch line is plain JSON, while listed objects come from client-node's
 * deserializer with Date fields: turn the watched object's timestamps into Dates
 * too, so consumers see one shape whichever way a CSR arrived.
 */
export function reviveCsr(raw: Csr): Csr {
  if (!raw || typeof raw !== 'object') return raw;
  const meta = raw.metadata;
  return {
    ...raw,
    metadata: meta && {
      ...meta,
      creationTimestamp: toDate(meta.creationTimestamp),
      deletionTimestamp: toDate(meta.deletionTimestamp),
      managedFields: meta.managedFields?.map((f) => ({ ...f, time: toDate(f.time) })),
    },
    status: raw.status && {
      ...raw.status,
      conditions: raw.status.conditions?.map((c) => ({ ...c, lastUpdateTime: toDate(c.lastUpdateTime), lastTransitionTime: toDate(c.lastTransitionTime) })),
    },
  };
}
