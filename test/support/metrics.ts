import { registry } from '../../src/metrics/registry.js';

/**
 * One sample of this process's metrics as /metrics shows it (0 when the series
 * has no sample yet): the bot and worker a lab starts in the test's process
 * count into this registry.
 */
export async function metricSample(series: string): Promise<number> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
