import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric of this process, in Prometheus' text format at `/metrics`.
 *
 * One registry per process: the bot and the worker of one process (`npm start`)
 * report into the same one, and each scrape shows what this process did. Labels
 * take only values the bot itself names (command, job kind, runbook, step kind,
 * end state, cluster and member names from the inventory): never user text, so
 * the series stay few and nothing a user typed reaches the metrics.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'etcd_medic_process_' });

const registers = [registry];
// Seconds: from a few milliseconds (an ack) to an hour (a restore waiting for approvals).
const SHORT = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const LONG = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export const commands = new Counter({
  name: 'etcd_medic_commands_total',
  help: 'Slash commands the bot answered, by subcommand and outcome (queued, replied, refused, denied, invalid, unknown).',
  labelNames: ['command', 'outcome'] as const,
  registers,
});
export const ackSeconds = new Histogram({
  name: 'etcd_medic_command_ack_seconds',
  help: 'From a slash command reaching the bot to its ack (Slack gives up after 3 s).',
  labelNames: ['command'] as const,
  buckets: SHORT,
  registers,
});
export const jobs = new Counter({
  name: 'etcd_medic_jobs_total',
  help: 'Jobs a worker of this process finished, by kind and outcome (done, failed, busy: the run was held by another worker).',
  labelNames: ['kind', 'outcome'] as const,
  registers,
});
export const jobSeconds = new Histogram({
  name: 'etcd_medic_job_seconds',
  help: 'How long a job ran on a worker, by kind.',
  labelNames: ['kind'] as const,
  buckets: LONG,
  registers,
});
export const queueWaitSeconds = new Histogram({
  name: 'etcd_medic_queue_wait_seconds',
  help: 'From a job being queued to a worker starting it, by kind.',
  labelNames: ['kind'] as const,
  buckets: [...SHORT, 10, 30, 60, 300],
  registers,
});
export const runsEnded = new Counter({
  name: 'etcd_medic_runs_total',
  help: 'Runbook runs that ended, by runbook and end state (done, failed, cancelled, rejected).',
  labelNames: ['runbook', 'state'] as const,
  registers,
});
export const stepSeconds = new Histogram({
  name: 'etcd_medic_step_seconds',
  help: 'How long a step of a run took, from its start to its end, by kind and outcome (done, skipped, failed).',
  labelNames: ['kind', 'outcome'] as const,
  buckets: LONG,
  registers,
});
export const approvalWaitSeconds = new Histogram({
  name: 'etcd_medic_approval_wait_seconds',
  help: 'From a destructive step asking for approval to someone deciding, by runbook and decision (approve, reject).',
  labelNames: ['runbook', 'decision'] as const,
  buckets: LONG,
  registers,
});
export const slackErrors = new Counter({
  name: 'etcd_medic_slack_api_errors_total',
  help: 'Slack Web API calls that failed after their retries, by method and error.',
  labelNames: ['method', 'error'] as const,
  registers,
});
export const slackRetries = new Counter({
  name: 'etcd_medic_slack_api_retries_total',
  help: 'Slack Web API attempts that failed and were tried again.',
  registers,
});

// The last /etcd status of each cluster this process ran, as the channel saw it.
const clusterLabels = ['cluster'] as const;
export const membersTotal = new Gauge({ name: 'etcd_medic_cluster_members', help: 'Voting members of the cluster at its last status.', labelNames: clusterLabels, registers });
export const membersUp = new Gauge({ name: 'etcd_medic_cluster_members_up', help: 'Voting members that answered and are started at the last status.', labelNames: clusterLabels, registers });
export const quorum = new Gauge({ name: 'etcd_medic_cluster_quorum', help: '1 when the cluster had quorum at its last status (HEALTHY or DEGRADED), else 0.', labelNames: clusterLabels, registers });
export const leader = new Gauge({ name: 'etcd_medic_cluster_leader', help: '1 when a leader was seen at the last status, else 0.', labelNames: clusterLabels, registers });
export const alarms = new Gauge({ name: 'etcd_medic_cluster_alarms', help: 'Alarms (NOSPACE, CORRUPT) raised at the last status.', labelNames: clusterLabels, registers });
export const statusTime = new Gauge({ name: 'etcd_medic_cluster_status_timestamp_seconds', help: 'When the last status of the cluster was taken (Unix time).', labelNames: clusterLabels, registers });
export const dbBytes = new Gauge({ name: 'etcd_medic_member_db_size_bytes', help: 'DB size of each member that answered the last status.', labelNames: ['cluster', 'member'] as const, registers });
export const dbQuotaBytes = new Gauge({ name: 'etcd_medic_cluster_db_quota_bytes', help: "The cluster's backend quota as the inventory gives it (etcd's default 2 GiB when it does not).", labelNames: clusterLabels, registers });

/** Where the queue gauges read from, set once the process has its queue (see watchQueue). */
interface QueueSource {
  counts(): Promise<Record<string, number>>;
  workers(): Promise<number>;
  /** Runs not yet ended: the runbook and, when a step is running, since when (ISO). */
  activeRuns(): Promise<{ runbook: string; runningSince: string | null }[]>;
}
let source: QueueSource | null = null;
const SCRAPE_BOUND_MS = 2000;

/** The bounded answer of `p`, or null: a scrape while Redis is down still answers, without these gauges. */
function bounded<T>(p: Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), SCRAPE_BOUND_MS)));
  return Promise.race([p.catch(() => null), late]).finally(() => clearTimeout(timer));
}

export const queueJobs = new Gauge({
  name: 'etcd_medic_queue_jobs',
  help: 'Jobs in the queue by state (waiting, active, delayed, failed), read from Redis at the scrape.',
  labelNames: ['state'] as const,
  registers,
  async collect() {
    const counts = source && (await bounded(source.counts()));
    this.reset();
    for (const [state, n] of Object.entries(counts ?? {})) this.set({ state }, n);
  },
});
export const workersAlive = new Gauge({
  name: 'etcd_medic_workers_alive',
  help: 'Workers whose heartbeat is fresh in Redis, read at the scrape.',
  registers,
  async collect() {
    const n = source && (await bounded(source.workers()));
    this.reset();
    if (n !== null) this.set(n);
  },
});

/**
 * The unfinished runs, read once per scrape: both run gauges collect at the same
 * time and share the one read (a scrape that starts after it ended reads again).
 */
let runsRead: Promise<Awaited<ReturnType<QueueSource['activeRuns']>> | null> | null = null;
function activeRunsOnce() {
  if (!source) return Promise.resolve(null);
  runsRead ??= bounded(source.activeRuns()).finally(() => {
    runsRead = null;
  });
  return runsRead;
}

export const runsActive = new Gauge({
  name: 'etcd_medic_runs_active',
  help: 'Runs not yet ended, by runbook, read from Redis at the scrape.',
  labelNames: ['runbook'] as const,
  registers,
  async collect() {
    const runs = await activeRunsOnce();
    this.reset();
    for (const r of runs ?? []) this.inc({ runbook: r.runbook });
  },
});
export const runningStepSeconds = new Gauge({
  name: 'etcd_medic_running_step_max_seconds',
  help: 'How long the longest-running step of an unfinished run has run so far, by runbook (a stuck run shows here).',
  labelNames: ['runbook'] as const,
  registers,
  async collect() {
    const runs = await activeRunsOnce();
    this.reset();
    const oldest = new Map<string, number>();
    for (const r of runs ?? []) {
      const since = r.runningSince ? Date.parse(r.runningSince) : NaN;
      if (Number.isFinite(since)) oldest.set(r.runbook, Math.min(since, oldest.get(r.runbook) ?? Infinity));
    }
    for (const [runbook, since] of oldest) this.set({ runbook }, Math.max(0, (Date.now() - since) / 1000));
  },
});

export function watchQueue(s: QueueSource): void {
  source = s;
}
