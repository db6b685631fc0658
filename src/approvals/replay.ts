import type { ChainCheck } from '../incident/chain.js';
import type { StepMark, TimelineEntry } from '../incident/store.js';
import type { Run } from '../runbook/types.js';

/** A run's incident timeline, read and checked in one step (IncidentStore.readVerified). */
export interface SignedTimeline {
  incidentId: string;
  entries: TimelineEntry[];
  chain: ChainCheck;
}

/** The marks of one step of one run, oldest first. */
export function marksOf(entries: TimelineEntry[], runId: string, step: number): { starts: (TimelineEntry & { mark: StepMark })[]; ends: (TimelineEntry & { mark: StepMark })[] } {
  const mine = entries.filter((e): e is TimelineEntry & { mark: StepMark } => e.runId === runId && e.actor === 'bot' && !!e.mark && e.mark.step === step);
  return { starts: mine.filter((e) => e.mark.what === 'start'), ends: mine.filter((e) => e.mark.what === 'end') };
}

/**
 * Whether destructive step `index` may go on from where the run's record in
 * Redis says it is, by the signed timeline: null, or why not.
 *
 * The run's record can be set back by anyone who can write Redis, and a done
 * step's old approval still verifies. The timeline cannot: its entries are
 * signed with a key that is never in Redis, and a deleted, cut or rewritten
 * entry breaks the chain. So the engine writes there that a step started
 * (before it acts) and that it ended, and reads it here:
 * - a step that ended never runs again, whatever its record says;
 * - a step that started is never started afresh (pending, approved): one
 *   approval, one run of the step; a started step never legitimately goes back
 *   to waiting for approval;
 * - a step is resumed (running) only if the timeline shows it started under the
 *   very approval it carries, and not that it ended.
 * A timeline that does not verify cannot say any of this: the step is refused.
 */
export function replayProblem(run: Run, index: number, timeline: SignedTimeline | null): string | null {
  const n = index + 1;
  const rec = run.records[index];
  if (!timeline) return `run ${run.runId} names no incident whose timeline could show whether step ${n} already ran`;
  if (!timeline.chain.ok) return `the timeline of incident ${timeline.incidentId} does not verify (${timeline.chain.reason}), so it cannot show whether step ${n} already ran`;
  const { starts, ends } = marksOf(timeline.entries, run.runId, index);
  const end = ends[ends.length - 1];
  const ended = end ? `ended (${end.mark.outcome ?? 'ended'}) at ${end.at}` : '';
  if (rec?.status === 'running') {
    if (end) return `step ${n} already ran: the signed timeline says it ${ended}`;
    if (!rec.approvalSig || !starts.some((s) => s.mark.approval === rec.approvalSig)) {
      return `the signed timeline has no start of step ${n} under the approval it carries: "running" was written into Redis, or its worker stopped between starting the step and recording the start`;
    }
    return null;
  }
  const used = rec?.approvalSig ? starts.find((s) => s.mark.approval === rec.approvalSig) : undefined;
  if (used) return `the approval of step ${n} by <@${rec!.approvedBy}> at ${rec!.approvedAt} was already used: the signed timeline says the step started under it at ${used.at}${end ? ` and ${ended}` : ''}`;
  if (end) return `step ${n} already ran: the signed timeline says it ${ended}`;
  if (starts[0]) return `step ${n} already started at ${starts[0].at} (the signed timeline says so), and a step that started never starts again`;
  return null;
}

/**
 * The end, under the approval it carries, of a step whose record still says
 * "running": the step ended (done or skipped) and its end was signed, but its
 * worker stopped (killed, lost Redis or its run lease) before the run's record
 * said so. The step is then recorded from the timeline, not run again and not
 * refused: the run goes on as it would have. Null in every other case (which
 * replayProblem judges). The end must be the run's last entry on the timeline:
 * a worker that recorded the step said so in the thread (also an entry), so a
 * record set back after the run went on is still refused. A record set back in
 * the moment between reads the same, and recording the step again does nothing
 * on the hosts.
 */
export function endedUnrecorded(run: Run, index: number, timeline: SignedTimeline | null): (TimelineEntry & { mark: StepMark }) | null {
  const rec = run.records[index];
  if (!timeline?.chain.ok || rec?.status !== 'running' || !rec.approvalSig) return null;
  const { starts, ends } = marksOf(timeline.entries, run.runId, index);
  const end = ends[ends.length - 1];
  if (!end || end.mark.approval !== rec.approvalSig || !starts.some((s) => s.mark.approval === rec.approvalSig)) return null;
  // Nothing the bot wrote of the run after its end: a worker that recorded the step goes on to say so in the
  // thread (an entry here too), so a record set back after the run moved on is still refused (replayProblem).
  // People's entries (a click on an old button, meanwhile) say nothing about that.
  const last = timeline.entries.filter((e) => e.runId === run.runId && e.actor === 'bot').pop();
  if (last?.seq !== end.seq) return null;
  return end.mark.outcome === 'done' || end.mark.outcome === 'skipped' ? end : null;
}

/**
 * A step recorded "running" of which the verified timeline holds neither a start nor an end: it
 * never acted (the engine acts only after its start is signed). Its worker stopped between
 * recording the start and signing it, or "running" was written into Redis.
 */
export function neverStarted(run: Run, index: number, timeline: SignedTimeline | null): boolean {
  if (!timeline?.chain.ok || run.records[index]?.status !== 'running') return false;
  const { starts, ends } = marksOf(timeline.entries, run.runId, index);
  return starts.length === 0 && ends.length === 0;
}
