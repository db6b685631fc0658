import { createHash } from 'node:crypto';
import type { ObservedState, Run, StepSpec } from './types.js';

/** JSON with sorted keys, so that equal data always hashes the same. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The part of the state that an approval depends on: who is a member, voter or
 * learner, started and reachable. Leader, indexes and time are left out: they
 * move on their own without changing what a step would do.
 */
export function membershipFingerprint(state: ObservedState): string {
  const m = [...state.members]
    .sort((a, b) => a.idHex.localeCompare(b.idHex))
    .map((x) => ({ id: x.idHex, name: x.name, learner: x.learner, started: x.started, reachable: x.reachable, peer: x.peerURLs }));
  return sha256(canonical(m));
}

/**
 * What an approval is ultimately bound to. Besides the steps and the state they were
 * planned against, it covers who asked (the requester may not approve their own plan)
 * and the incident whose signed timeline records the run's steps: neither can be
 * swapped in Redis without the plan's signature (src/approvals/sign.ts) failing.
 */
export function planHash(p: { runId: string; cluster: string; target: string; steps: StepSpec[]; plannedState: ObservedState; requestedBy: string; incidentId?: string }): string {
  return sha256(
    canonical({ runId: p.runId, cluster: p.cluster, target: p.target, steps: p.steps, state: membershipFingerprint(p.plannedState), requestedBy: p.requestedBy, incidentId: p.incidentId }),
  );
}

export function gateHash(run: Pick<Run, 'planHash'>, step: number, state: ObservedState, round: number): string {
  return sha256(canonical({ plan: run.planHash, step, state: membershipFingerprint(state), round }));
}

/** Says, in words, how two states differ in membership (for "state changed, approve again"). */
export function describeChange(before: ObservedState, after: ObservedState): string {
  const key = (m: ObservedState['members'][number]) => m.idHex;
  const b = new Map(before.members.map((m) => [key(m), m]));
  const a = new Map(after.members.map((m) => [key(m), m]));
  const out: string[] = [];
  for (const [id, m] of b) if (!a.has(id)) out.push(`${m.name || id} (${id}) left the member list`);
  for (const [id, m] of a) if (!b.has(id)) out.push(`${m.name || id} (${id}) joined the member list`);
  for (const [id, m] of a) {
    const o = b.get(id);
    if (!o) continue;
    if (o.reachable !== m.reachable) out.push(`${m.name} became ${m.reachable ? 'reachable' : 'unreachable'}`);
    if (o.learner !== m.learner) out.push(`${m.name} is now a ${m.learner ? 'learner' : 'voter'}`);
    if (o.started !== m.started) out.push(`${m.name} is now ${m.started ? 'started' : 'unstarted'}`);
  }
  return out.join('; ') || 'the membership changed';
}
