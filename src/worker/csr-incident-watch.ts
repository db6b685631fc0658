import type { Redis } from 'ioredis';
import type { ClusterConfig, Inventory } from '../config/schema.js';
import type { CsrReviewStore } from '../csr/review-store.js';
import { recorder } from '../incident/record.js';
import type { Incident, IncidentStore } from '../incident/store.js';
import { KubeCluster } from '../kube/client.js';
import { policyContext, type PolicyContext } from '../kube/csr-policy.js';
import { CsrWatch, kubeCsrTransport, type CsrWatchEvent } from '../kube/csr-watch.js';
import { csrState, type Csr } from '../kube/csrs.js';
import { listNodes } from '../kube/nodes.js';
import type { Logger } from '../log.js';
import { takeLease } from '../queue/lease.js';
import type { Chat } from '../chat/port.js';
import { postCsrReview } from './csr-review.js';

export interface CsrWatchTiming {
  /** How often each worker looks at the open incidents and renews (or tries to take) each cluster's watch lease. */
  everyMs?: number;
  /** The lease: another worker takes a cluster's watch over this long after its holder died. */
  leaseMs?: number;
  /** A wave: the CSRs that arrive within this long after the first one are posted together. */
  waveMs?: number;
  /** A wave this big is posted at once, without waiting for the rest of its window. */
  waveMax?: number;
}

export interface CsrIncidentWatchDeps extends CsrWatchTiming {
  inventory: Inventory;
  incidents: IncidentStore;
  reviews: CsrReviewStore;
  redis: Redis;
  chat: Chat;
  log: Logger;
  /** This worker's ID: the lease names it. */
  owner: string;
}

export interface CsrIncidentWatch {
  /** The clusters this worker watches now. */
  watching(): string[];
  stop(): Promise<void>;
}

/**
 * While an incident is open in any channel, one watch per cluster with a
 * kubeconfig (one worker at a time holds each, by a lease in Redis) posts the
 * CSRs filed since the incident opened into the incident's thread, in waves:
 * the CSRs that arrive within a short window after the first are one message,
 * with the same review rows and buttons as `/etcd csr`. Each CSR is posted
 * once per incident: the uids posted are kept in Redis with the incident, so
 * a dropped watch connection, a re-list after 410, or the lease moving to
 * another worker never posts a wave again. The watch stops when no incident
 * is open.
 */
export function startCsrIncidentWatch(deps: CsrIncidentWatchDeps): CsrIncidentWatch {
  const everyMs = deps.everyMs ?? 1000;
  const leaseMs = deps.leaseMs ?? 10_000;
  const log = deps.log.child({ component: 'csr-watch' });
  const watchers = new Map<string, ClusterWatcher>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();

  const openIncidents = async (): Promise<Incident[]> => {
    const all = await Promise.all((await deps.incidents.openIds()).map((id) => deps.incidents.get(id)));
    return all.filter((i): i is Incident => !!i && !i.closedAt);
  };

  const stopWatcher = async (cluster: string, why: string) => {
    const w = watchers.get(cluster);
    if (!w) return;
    watchers.delete(cluster);
    await w.stop();
    await deps.reviews.releaseLease(deps.reviews.watchLeaseKey(cluster), deps.owner).catch(() => undefined);
    log.info({ cluster, why }, 'CSR watch stopped');
  };

  const tick = async () => {
    const open = stopped ? [] : await openIncidents();
    for (const cluster of deps.inventory.clusters.filter((c) => c.kubeconfig)) {
      if (stopped || open.length === 0) {
        await stopWatcher(cluster.name, stopped ? 'worker stopping' : 'no incident is open');
        continue;
      }
      const held = await takeLease(deps.redis, deps.reviews.watchLeaseKey(cluster.name), deps.owner, leaseMs);
      if (!held) {
        // Another worker watches this cluster (or took it over while this one was stalled).
        if (watchers.has(cluster.name)) await stopWatcher(cluster.name, 'another worker holds the lease');
        continue;
      }
      if (watchers.has(cluster.name)) continue;
      let k: KubeCluster;
      try {
        k = KubeCluster.forCluster(cluster);
      } catch (err) {
        log.warn({ cluster: cluster.name, err: (err as Error).message }, 'CSR watch cannot start');
        continue;
      }
      const w = new ClusterWatcher(cluster, k, deps, openIncidents, log);
      watchers.set(cluster.name, w);
      w.start();
      log.info({ cluster: cluster.name, incidents: open.map((i) => i.id) }, 'CSR watch started');
    }
  };

  const timer = setInterval(() => {
    running = running.then(tick).catch((err: Error) => log.warn({ err: err.message }, 'CSR watch tick failed'));
  }, everyMs);
  timer.unref();
  return {
    watching: () => [...watchers.keys()],
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running.catch(() => undefined);
      for (const name of [...watchers.keys()]) await stopWatcher(name, 'worker stopping');
    },
  };
}

/** One cluster's watch and the wave it is gathering. */
class ClusterWatcher {
  private readonly watch: CsrWatch;
  private readonly wave = new Map<string, Csr>(); // by uid
  private timer: NodeJS.Timeout | null = null;
  private posting: Promise<void> = Promise.resolve();
  private readonly waveMs: number;
  private readonly waveMax: number;
  private lastError = '';
  private stopped = false;

  constructor(
    private readonly cluster: ClusterConfig,
    private readonly k: KubeCluster,
    private readonly deps: CsrIncidentWatchDeps,
    private readonly openIncidents: () => Promise<Incident[]>,
    private readonly log: Logger,
  ) {
    this.waveMs = deps.waveMs ?? 2000;
    this.waveMax = deps.waveMax ?? 50;
    this.watch = new CsrWatch(kubeCsrTransport(k), {
      onEvent: (e) => this.onEvent(e),
      onError: (err) => {
        // Said once per distinct reason: a watch that keeps failing the same way does not flood the log.
        if (err.reason !== this.lastError) log.warn({ cluster: cluster.name, err: err.reason }, 'CSR watch: list or watch failed; retrying');
        this.lastError = err.reason;
      },
      onWatching: (rv) => {
        this.lastError = '';
        log.debug({ cluster: cluster.name, resourceVersion: rv }, 'CSR watch connected');
      },
    });
  }

  start(): void {
    this.watch.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // A wave not posted yet is left to whoever watches next: it was not claimed, so it is posted then.
    this.wave.clear();
    await this.watch.stop();
    await this.posting;
    if (this.timer) clearTimeout(this.timer);
  }

  private onEvent(e: CsrWatchEvent): void {
    const uid = e.csr.metadata?.uid;
    if (!uid) return;
    if (e.type === 'ADDED') {
      if (csrState(e.csr).state !== 'pending') return;
      this.wave.set(uid, e.csr);
      if (this.wave.size >= this.waveMax) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.waveMs);
      return;
    }
    // Decided or deleted while its wave gathers: it no longer waits for anyone.
    if (e.type === 'DELETED' || csrState(e.csr).state !== 'pending') this.wave.delete(uid);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = [...this.wave.values()];
    this.wave.clear();
    if (batch.length === 0) return;
    // One wave at a time: the next waits for this one's post.
    this.posting = this.posting
      .then(() => this.post(batch))
      .catch((err: Error) => {
        this.log.warn({ cluster: this.cluster.name, err: err.message }, 'CSR wave not posted; trying again with the next wave');
        if (this.stopped) return;
        for (const c of batch) if (!this.wave.has(c.metadata!.uid!)) this.wave.set(c.metadata!.uid!, c);
        this.timer ??= setTimeout(() => this.flush(), Math.max(this.waveMs, 5000));
      });
  }

  private async post(batch: Csr[]): Promise<void> {
    const name = this.cluster.name;
    const incidents = await this.openIncidents();
    if (incidents.length === 0) return;
    let policy: PolicyContext;
    try {
      policy = policyContext(await listNodes(this.k), this.cluster);
    } catch (err) {
      // The review still shows the requests; node names are then judged against the inventory's masters only.
      this.log.warn({ cluster: name, err: (err as Error).message }, 'CSR wave: nodes not listed; reviewing against the inventory only');
      policy = policyContext([], this.cluster);
    }
    const record = recorder(this.deps.incidents, this.log);
    for (const inc of incidents) {
      // CSRs filed since the incident opened (Kubernetes timestamps are whole seconds).
      const since = Math.floor(Date.parse(inc.openedAt) / 1000) * 1000;
      const fresh = batch.filter((c) => (c.metadata?.creationTimestamp ? new Date(c.metadata.creationTimestamp).getTime() : 0) >= since);
      const claimed = new Set(await this.deps.reviews.claimPosted(inc.id, fresh.map((c) => c.metadata!.uid!)));
      const csrs = fresh.filter((c) => claimed.has(c.metadata!.uid!));
      if (csrs.length === 0) continue;
      try {
        const title = `New CSR${csrs.length > 1 ? 's' : ''} in ${name}`;
        const { review, rows } = await postCsrReview(this.deps.chat, this.deps.reviews, { cluster: name, channelId: inc.channelId, threadTs: inc.rootTs, incidentId: inc.id, by: 'bot', title, csrs, policy });
        const flagged = rows.filter((r) => !r.verdict.pass).map((r) => r.name);
        await record(inc.channelId, {
          kind: 'state',
          actor: 'bot',
          incidentId: inc.id,
          text: `${csrs.length} new pending CSR(s) in ${name} posted for review (${review.id}): ${rows.map((r) => r.name).join(', ')}${flagged.length ? `; flagged: ${flagged.join(', ')}` : ''}`,
        });
        this.log.info({ cluster: name, incident: inc.id, review: review.id, csrs: rows.map((r) => r.name) }, 'CSR wave posted');
      } catch (err) {
        // Not posted: give the CSRs back so that a later wave (or the next watcher) posts them.
        await this.deps.reviews.unclaimPosted(inc.id, [...claimed]);
        throw err;
      }
    }
  }
}
