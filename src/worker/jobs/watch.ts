import type { Inventory } from '../../config/schema.js';
import type { EtcdPool } from '../../etcd/pool.js';
import type { Logger } from '../../log.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { withDiagnosis } from '../../render/diagnosis-message.js';
import { renderStatus, type SlackMessage } from '../../render/status-message.js';
import { decodeWatchState, encodeWatchState, watchChange, watchFingerprint, watchState } from '../../status/watch-state.js';
import { observeStatus } from '../../metrics/observe.js';
import { viewCluster } from '../cluster-view.js';
import { diagnosedStatus } from '../status-diagnosis.js';
import type { WatchStore } from '../watch-store.js';

export interface WatchDeps {
  inventory: Inventory;
  pool: EtcdPool;
  /** Posts a message to a channel (the chat the worker answers through). */
  post: (channel: string, msg: SlackMessage) => Promise<unknown>;
  watches: WatchStore;
  log: Logger;
}

/**
 * One look of the proactive watch: the status `/etcd status` would post, and a
 * post to the cluster's watch channel only when the verdict, an alarm or the
 * diagnosis changed since the last post. The last posted state is kept in Redis
 * and swapped atomically, so two workers never post the same state twice.
 */
export async function runWatch(env: JobEnvelope & { request: { name: 'watch' } }, deps: WatchDeps): Promise<string> {
  const cluster = deps.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  // The inventory changed under a scheduled job: nothing to watch (the next start removes the schedule).
  if (!cluster?.watch) return 'not watched';
  const channel = cluster.watch.channel;
  const { report, diagnoses } = await diagnosedStatus(cluster, viewCluster(cluster, deps.pool));
  observeStatus(cluster, report);
  const state = watchState(report, diagnoses);
  const next = { fingerprint: watchFingerprint(state), state: encodeWatchState(state) };
  const { changed, prev } = await deps.watches.swap(cluster.name, channel, next);
  if (!changed) return `unchanged ${report.verdict}`;
  const change = watchChange(decodeWatchState(prev?.state ?? null), state);
  if (!change.post) return `first look ${report.verdict}, nothing to say`;

  const footer = `watch every ${cluster.watch.intervalSeconds} s · \`/etcd status ${cluster.name}\` to look again`;
  const msg = watchMessage(withDiagnosis(renderStatus(report, footer), diagnoses, cluster.name), change.what);
  try {
    await deps.post(channel, msg);
  } catch (err) {
    // Not posted: the state goes back, so the next look (on any worker) posts the change.
    await deps.watches.undo(cluster.name, channel, next, prev).catch(() => undefined);
    throw err;
  }
  deps.log.info({ cluster: cluster.name, channel, change: change.what }, 'watch posted a change');
  return `posted: ${change.what}`;
}

/** The status message with the change named first, under its header. */
function watchMessage(msg: SlackMessage, what: string): SlackMessage {
  const line = { type: 'context', elements: [{ type: 'mrkdwn', text: `:eyes: *Watch:* ${what}`.slice(0, 2000) }] };
  const [head, ...rest] = msg.blocks;
  const blocks = msg.blocks.length < 50 && head ? [head, line, ...rest] : msg.blocks;
  return { text: `Watch: ${what}. ${msg.text}`.slice(0, 3000), blocks };
}
