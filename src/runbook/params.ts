import type { StepSpec } from './types.js';

/** A step's parameter as text (plans store paths, names and IDs as strings). */
export function param(step: StepSpec, key: string): string {
  const v = step.params[key];
  if (v === undefined) throw new Error(`step ${step.kind} has no parameter "${key}"`);
  return String(v);
}
