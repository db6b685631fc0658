import type { Inventory } from '../../config/schema.js';
import type { EtcdPool } from '../../etcd/pool.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import { renderStatus } from '../../render/status-message.js';
import { renderStatusProgress } from '../../render/status-progress.js';
import type { StatusReport } from '../../status/assess.js';
import { viewCluster } from '../cluster-view.js';
import { observeStatus } from '../../metrics/observe.js';
import type { Chat } from '../../chat/port.js';
import type { Logger } from '../../log.js';
import { ProgressiveMessage } from '../progressive-message.js';
import { replyTo } from '../reply-to.js';
import { refuseUnknownCluster } from './unknown-cluster.js';
import { withDiagnosis } from '../../render/diagnosis-message.js';
import { diagnosedStatus } from '../status-diagnosis.js';

/**
 * How long status keeps quiet before it shows what it knows so far. Healthy members answer in
 * 10–50 ms here (a cold TLS connection included), so a cluster whose members all answer gets one
 * message with its verdict and no "waiting" message first; 300 ms leaves room for a loaded worker
 * while the first message still lands within half a second of the command (queue pickup and the
 * post itself take a few tens of milliseconds).
 */
export const STATUS_FIRST_POST_GRACE_MS = 300;

export interface StatusDeps {
  inventory: Inventory;
  pool: EtcdPool;
  chat: Chat;
  /** Read certificate expiry beside the etcd view, for the warning line (on unless false: the bench compares). */
  certCheck?: boolean;
  /** Overrides STATUS_FIRST_POST_GRACE_MS. */
  graceMs?: number;
  log?: Logger;
}

/**
 * Asks every member, judges the answers, answers in one channel message. When members are
 * slow to answer (a frozen host), that message first shows what is known and who is still
 * asked, and is redrawn with the verdict once every member has answered or run out its deadline.
 */
export async function runStatus(env: JobEnvelope & { request: { name: 'status' } }, deps: StatusDeps): Promise<StatusReport> {
  const cluster = deps.inventory.clusters.find((c) => c.name === env.request.data.cluster);
  if (!cluster) {
    // The inventory changed between the ack and the job (a worker with another config).
    return refuseUnknownCluster(deps.chat, replyTo(env), env.request.data.cluster);
  }
  const footer = `asked by <@${env.userId}> · job ${env.requestId}`;
  const answer = new ProgressiveMessage(deps.chat, replyTo(env), { graceMs: deps.graceMs ?? STATUS_FIRST_POST_GRACE_MS, log: deps.log });
  // Through viewCluster: an election in progress is waited out instead of reported as a lost quorum.
  const view = viewCluster(cluster, deps.pool, undefined, { onProgress: (p) => answer.show(renderStatusProgress(p, footer)) });
  // Every member has answered or failed: what is left (certificates) is bounded by a short grace, not worth a progress message.
  void view.then(() => answer.hold(), () => answer.hold());
  try {
    // Certificates and the masters' pending CSRs are read while the members are asked, each waited for at most a short grace after them.
    const { report, diagnoses } = await diagnosedStatus(cluster, view, { extras: deps.certCheck !== false });
    observeStatus(cluster, report);
    await answer.finish(withDiagnosis(renderStatus(report, footer), diagnoses, cluster.name));
    return report;
  } catch (err) {
    const text = `etcd ${cluster.name}: the check did not finish (${(err as Error).message}); no verdict. Type \`/etcd status\` again.`;
    await answer.abandon({ text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `:warning: ${text}\n${footer}`.slice(0, 3000) } }] });
    throw err;
  }
}
