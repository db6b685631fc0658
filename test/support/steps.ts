import type { StepKind, StepOf, StepSpec } from '../../src/runbook/types.js';

/** The step, which must be of `kind` (a plan's step by its index, its params typed for that kind). */
export function stepOf<K extends StepKind>(step: StepSpec | undefined, kind: K): StepOf<K> {
  if (step?.kind !== kind) throw new Error(`expected a ${kind} step, found ${step ? step.kind : 'none'}`);
  return step as StepOf<K>;
}
