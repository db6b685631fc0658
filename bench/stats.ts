export interface Summary {
  n: number;
  min: number;
  median: number;
  p99: number;
}

/** min / median / p99 of a list of durations (nearest-rank percentiles). */
export function summarize(values: number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return { n: s.length, min: s[0] ?? NaN, median: rank(0.5), p99: rank(0.99) };
}

const f = (v: number) => v.toFixed(1).padStart(8);

/** Prints rows of [label, measured, baseline] with the ratio of medians. */
export function printTable(title: string, rows: [string, Summary, Summary][]): void {
  console.log(`\n${title}`);
  console.log(`${'what'.padEnd(34)} ${'n'.padStart(4)} ${'min'.padStart(8)} ${'median'.padStart(8)} ${'p99'.padStart(8)} | ${'base min'.padStart(8)} ${'base med'.padStart(8)} ${'base p99'.padStart(8)} | ratio`);
  for (const [label, m, b] of rows) {
    console.log(`${label.padEnd(34)} ${String(m.n).padStart(4)} ${f(m.min)} ${f(m.median)} ${f(m.p99)} | ${f(b.min)} ${f(b.median)} ${f(b.p99)} | ${(m.median / b.median).toPrecision(3)}x`);
  }
}
