import type { StepSpec } from './types.js';

/**
 * Fault injection, for tests only (MEDIC_FAULT_KILL_AFTER): does `spec` name step
 * `index` of the plan? `kind` names the first step of that kind, `kind#n` the n-th
 * (a plan has one wait-caught-up and one promote per member it grows back).
 */
export function faultNamesStep(spec: string | undefined, steps: readonly StepSpec[], index: number): boolean {
  if (!spec) return false;
  const [kind, nth = '1'] = spec.split('#');
  if (steps[index]?.kind !== kind) return false;
  return steps.slice(0, index + 1).filter((s) => s.kind === kind).length === Number(nth);
}

/**
 * Fault injection, for tests only (MEDIC_FAULT_KILL_AFTER_RECORD=<kind or kind#n>): the
 * process dies right after that step's outcome is saved, before it tells anyone or queues
 * the next step.
 */
export function killAfterRecordFault(steps: readonly StepSpec[], index: number): void {
  if (faultNamesStep(process.env.MEDIC_FAULT_KILL_AFTER_RECORD, steps, index)) process.kill(process.pid, 'SIGKILL');
}
