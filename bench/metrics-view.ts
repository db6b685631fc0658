/**
 * The bot's own view of a bench run, read from its /metrics as Prometheus
 * would: commands and their acks, jobs and their time in the queue, runs and
 * their steps. Beside the bench's client-side timings, it shows where the
 * time went on the server side.
 */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The upper bound of the bucket that holds quantile `q` of a histogram's series with `labels` (Prometheus' estimate, coarser). */
function quantile(samples: Sample[], name: string, match: Record<string, string>, q: number): number | null {
  const buckets = samples
    .filter((s) => s.name === `${name}_bucket` && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), n: s.value }))
    .sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1]?.n ?? 0;
  if (!total) return null;
  return buckets.find((b) => b.n >= q * total)!.le;
}

const ms = (s: number | null) => (s === null ? '-' : s === Infinity ? '>max' : `≤${Math.round(s * 1000)}`);

/**
 * Reads each process's /metrics (the bot's: commands and acks; the worker's: jobs, runs, steps) and
 * prints them as one view, as a dashboard over both would.
 */
export async function printMetricsView(ports: number[]): Promise<void> {
  const samples: Sample[] = [];
  for (const port of ports) samples.push(...parse(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()));
  const rows = (name: string) => samples.filter((s) => s.name === name && s.value > 0);
  console.log('\nThe bot\'s and the worker\'s own /metrics at the end of the run (ack and queue-wait quantiles are bucket bounds, in ms):');
  for (const s of rows('etcd_medic_commands_total')) {
    const c = s.labels.command!;
    console.log(`  /etcd ${c.padEnd(16)} ${s.labels.outcome!.padEnd(10)} ${String(s.value).padStart(5)}   ack p50 ${ms(quantile(samples, 'etcd_medic_command_ack_seconds', { command: c }, 0.5))}, p99 ${ms(quantile(samples, 'etcd_medic_command_ack_seconds', { command: c }, 0.99))}`);
  }
  for (const s of rows('etcd_medic_jobs_total')) {
    const k = s.labels.kind!;
    const count = samples.find((x) => x.name === 'etcd_medic_job_seconds_count' && x.labels.kind === k)?.value ?? 0;
    const sum = samples.find((x) => x.name === 'etcd_medic_job_seconds_sum' && x.labels.kind === k)?.value ?? 0;
    console.log(`  job ${k.padEnd(20)} ${s.labels.outcome!.padEnd(6)} ${String(s.value).padStart(5)}   mean ${count ? Math.round((sum / count) * 1000) : '-'} ms, queue wait p99 ${ms(quantile(samples, 'etcd_medic_queue_wait_seconds', { kind: k }, 0.99))}`);
  }
  for (const s of rows('etcd_medic_runs_total')) console.log(`  run ${s.labels.runbook!.padEnd(20)} ${s.labels.state!.padEnd(6)} ${String(s.value).padStart(5)}`);
  for (const s of rows('etcd_medic_step_seconds_count')) {
    const sum = samples.find((x) => x.name === 'etcd_medic_step_seconds_sum' && x.labels.kind === s.labels.kind && x.labels.outcome === s.labels.outcome)?.value ?? 0;
    console.log(`  step ${s.labels.kind!.padEnd(19)} ${s.labels.outcome!.padEnd(6)} ${String(s.value).padStart(5)}   mean ${Math.round((sum / s.value) * 1000)} ms`);
  }
  const retries = samples.filter((s) => s.name === 'etcd_medic_slack_api_retries_total').reduce((n, s) => n + s.value, 0);
  console.log(`  Slack API: ${rows('etcd_medic_slack_api_errors_total').reduce((n, s) => n + s.value, 0)} calls failed for good, ${retries} retried`);
}
