import type { StatusReport, Verdict } from './assess.js';
import type { Diagnosis } from './diagnose.js';

/**
 * What the proactive watch compares from one look to the next: the verdict, the
 * alarms raised and the diagnoses (by key: the fault and what it is about, not
 * its figures, so a raft index that moves on is no change).
 */
export interface WatchState {
  verdict: Verdict;
  alarms: string[];
  diagnoses: { key: string; title: string }[];
}

export function watchState(report: StatusReport, diagnoses: Diagnosis[]): WatchState {
  return {
    verdict: report.verdict,
    alarms: [...new Set(report.members.flatMap((m) => m.alarms.map((a) => `${a} on ${m.name}`)))].sort(),
    diagnoses: diagnoses.map((d) => ({ key: d.key, title: d.title })).sort((a, b) => a.key.localeCompare(b.key)),
  };
}

/** The form kept in Redis: equal states give equal strings (titles are not compared, only keys). */
export function encodeWatchState(s: WatchState): string {
  return JSON.stringify({ v: s.verdict, a: s.alarms, d: s.diagnoses.map((d) => [d.key, d.title]) });
}

export function decodeWatchState(raw: string | null): WatchState | null {
  if (!raw) return null;
  try {
    const o = JSON.parse(raw) as { v: Verdict; a: string[]; d: [string, string][] };
    return { verdict: o.v, alarms: o.a, diagnoses: o.d.map(([key, title]) => ({ key, title })) };
  } catch {
    return null;
  }
}

/** The key the comparison is made on: verdict, alarms and diagnosis keys. */
export function watchFingerprint(s: WatchState): string {
  return JSON.stringify([s.verdict, s.alarms, s.diagnoses.map((d) => d.key)]);
}

/**
 * Whether the watch posts, and the one line that says what changed. The first
 * look posts only when something is wrong: a watch turned on over a healthy
 * cluster says nothing until that changes.
 */
export function watchChange(prev: WatchState | null, next: WatchState): { post: boolean; what: string } {
  if (!prev) {
    const wrong = next.verdict !== 'HEALTHY' || next.alarms.length > 0 || next.diagnoses.length > 0;
    return { post: wrong, what: `first look: ${next.verdict.replace('_', ' ')}` };
  }
  if (watchFingerprint(prev) === watchFingerprint(next)) return { post: false, what: 'no change' };
  const parts: string[] = [];
  if (prev.verdict !== next.verdict) parts.push(`${prev.verdict.replace('_', ' ')} → ${next.verdict.replace('_', ' ')}`);
  const raised = next.alarms.filter((a) => !prev.alarms.includes(a));
  const cleared = prev.alarms.filter((a) => !next.alarms.includes(a));
  if (raised.length) parts.push(`new alarm ${raised.join(', ')}`);
  if (cleared.length) parts.push(`alarm cleared: ${cleared.join(', ')}`);
  const had = new Set(prev.diagnoses.map((d) => d.key));
  const has = new Set(next.diagnoses.map((d) => d.key));
  const added = next.diagnoses.filter((d) => !had.has(d.key));
  const gone = prev.diagnoses.filter((d) => !has.has(d.key));
  if (added.length) parts.push(`new: ${added.map((d) => d.title).join('; ')}`);
  if (gone.length) parts.push(`no longer: ${gone.map((d) => d.title).join('; ')}`);
  return { post: true, what: parts.join(' · ') || 'changed' };
}
