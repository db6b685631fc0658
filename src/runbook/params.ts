import type { StepSpec } from './types.js';

/** A key of the params of a step of type S. */
export type ParamKey<S extends StepSpec> = keyof S['params'] & string;

/** A step's parameter as text (plans store paths, names and IDs as strings). */
export function param<S extends StepSpec>(step: S, key: ParamKey<S>): string {
  const v = (step.params as Record<string, unknown>)[key];
  if (v === undefined) throw new Error(`step ${step.kind} has no parameter "${key}"`);
  return String(v);
}
