import { describe, expect, it } from 'vitest';
import { faultNamesStep } from '../../src/runbook/fault.js';
import type { StepSpec } from '../../src/runbook/types.js';

const steps = ['snapshot', 'fence', 'promote', 'wait-caught-up', 'promote', 'verify'].map((kind) => ({ kind }) as StepSpec);

describe('the kill-after fault (tests only) names one step of a plan', () => {
  it('a kind alone names its first step; kind#n the n-th', () => {
    expect(steps.map((_, i) => faultNamesStep('promote', steps, i))).toEqual([false, false, true, false, false, false]);
    expect(steps.map((_, i) => faultNamesStep('promote#2', steps, i))).toEqual([false, false, false, false, true, false]);
    expect(steps.map((_, i) => faultNamesStep('promote#3', steps, i))).toEqual([false, false, false, false, false, false]);
  });
  it('no fault, or another kind, names nothing', () => {
    expect(steps.some((_, i) => faultNamesStep(undefined, steps, i))).toBe(false);
    expect(steps.some((_, i) => faultNamesStep('member-remove', steps, i))).toBe(false);
  });
});
