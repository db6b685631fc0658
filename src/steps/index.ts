import type { StepResult } from '../runbook/engine.js';
import { apiserversStep } from './apiservers.js';
import { fenceStep } from './fence.js';
import { forceNewClusterStep } from './force-new-cluster.js';
import { forceRedeploymentStep } from './force-redeployment.js';
import { issueCertsStep } from './issue-certs.js';
import { kubeCheckStep } from './kube-check.js';
import { kubeletCsrsStep } from './kubelet-csrs.js';
import { kubeletRebootstrapStep } from './kubelet-rebootstrap.js';
import { memberAddLearnerStep } from './member-add-learner.js';
import { memberRemoveStep } from './member-remove.js';
import { promoteStep } from './promote.js';
import { restoreSnapshotStep } from './restore-snapshot.js';
import { rewriteReferencesStep } from './rewrite-references.js';
import { snapshotStep } from './snapshot.js';
import { stopAndMoveAsideStep } from './stop-and-move-aside.js';
import type { CommandOffer, Run } from '../runbook/types.js';
import type { LeftBehind, StepContext, StepDefinition, StepKind, StepSpec } from './types.js';
import { verifyBackupStep } from './verify-backup.js';
import { verifyStep } from './verify.js';
import { waitCaughtUpStep } from './wait-caught-up.js';
import { writeManifestStep } from './write-manifest.js';
import { drainStep } from './drain.js';
import { pdbDeleteStep } from './pdb-delete.js';
import { pdbRestoreStep } from './pdb-restore.js';
import { stsInitialStateStep } from './sts-initial-state.js';
import { uncordonStep } from './uncordon.js';
import { wipeClaimStep } from './wipe-claim.js';
import { workloadCheckStep } from './workload-check.js';
import { alarmDisarmStep } from './alarm-disarm.js';
import { compactStep } from './compact.js';
import { defragMemberStep } from './defrag-member.js';
import { writeCheckStep } from './write-check.js';

/** Every kind of step, by kind. Adding a kind is adding a file and a line here (and its type in `StepSpec`). */
export const STEPS = {
  snapshot: snapshotStep,
  'member-remove': memberRemoveStep,
  'stop-and-move-aside': stopAndMoveAsideStep,
  'member-add-learner': memberAddLearnerStep,
  'write-manifest': writeManifestStep,
  'wait-caught-up': waitCaughtUpStep,
  promote: promoteStep,
  verify: verifyStep,
  fence: fenceStep,
  'force-new-cluster': forceNewClusterStep,
  'verify-backup': verifyBackupStep,
  'restore-snapshot': restoreSnapshotStep,
  apiservers: apiserversStep,
  'kube-check': kubeCheckStep,
  'rewrite-references': rewriteReferencesStep,
  'kubelet-rebootstrap': kubeletRebootstrapStep,
  'kubelet-csrs': kubeletCsrsStep,
  'issue-certs': issueCertsStep,
  'workload-check': workloadCheckStep,
  'pdb-delete': pdbDeleteStep,
  'sts-initial-state': stsInitialStateStep,
  drain: drainStep,
  'wipe-claim': wipeClaimStep,
  uncordon: uncordonStep,
  'pdb-restore': pdbRestoreStep,
  'force-redeployment': forceRedeploymentStep,
  compact: compactStep,
  'defrag-member': defragMemberStep,
  'alarm-disarm': alarmDisarmStep,
  'write-check': writeCheckStep,
} as const satisfies { readonly [K in StepKind]: StepDefinition<K> };

export const STEP_KINDS = Object.keys(STEPS) as StepKind[];

/** A kind's definition, for a step of any kind (TypeScript cannot follow the kind from the step to the table by itself). */
export function definitionOf(step: StepSpec): StepDefinition<StepKind> | undefined {
  return Object.hasOwn(STEPS, step.kind) ? (STEPS[step.kind] as StepDefinition<StepKind>) : undefined;
}

/**
 * Why this version cannot take a stored step as it is (null: it can). Runs are
 * stored in Redis; one planned by an older version may hold params in another
 * shape (a list as JSON text): refused, never guessed at.
 */
export function stepProblem(step: StepSpec): string | null {
  const def = definitionOf(step);
  if (!def) return `this version knows no step of kind "${String(step.kind)}"`;
  const checked = def.params.safeParse(step.params);
  if (checked.success) return null;
  const issue = checked.error.issues[0]!;
  return `its parameter${issue.path.length ? ` "${issue.path.join('.')}"` : 's'} ${issue.message.replace(/^Invalid input: /, 'is not what this version reads: ')}`;
}

/**
 * Of the steps from `from` on, the first this version cannot take as it is, in
 * words for the run's thread; null when it can take them all. Checked before a
 * step runs, so a run planned by an older version stops before it acts, not halfway.
 */
export function unreadableFrom(steps: StepSpec[], from: number): string | null {
  for (let i = from; i < steps.length; i++) {
    const problem = stepProblem(steps[i]!);
    if (problem) {
      const which = i === from ? 'this step' : `step ${i + 1} (${steps[i]!.title}), later in this run,`;
      return `${which} was planned by an older version of the bot: plan it again (${problem}). Nothing was done by this step.`;
    }
  }
  return null;
}

/**
 * For a run that ended before its last step: each started step's `undo`, last
 * step first, as lines for the thread (see StepDefinition.undo).
 */
export async function undoOnEnd(ctxOf: (index: number) => StepContext, run: { steps: StepSpec[]; records: { status: string }[] }): Promise<string[]> {
  const lines: string[] = [];
  for (let i = run.steps.length - 1; i >= 0; i--) {
    const step = run.steps[i]!;
    const def = definitionOf(step);
    if (!def?.undo || !['done', 'skipped', 'running', 'failed'].includes(run.records[i]?.status ?? '')) continue;
    const line = await def.undo(ctxOf(i), step);
    if (line) lines.push(line);
  }
  return lines;
}

/** Runs a step through its kind's definition, once every step from it on reads as this version plans them. */
export async function executeStep(ctx: StepContext, step: StepSpec): Promise<StepResult> {
  const problem = unreadableFrom(ctx.run.steps, ctx.index);
  if (problem) throw new Error(problem);
  return definitionOf(step)!.execute(ctx, step);
}

/** Lines of one message stay within what a Slack section shows (the timeline keeps the whole text). */
const LEFT_LINES = 12;

/**
 * For a run that ended before its last step: what its steps left half-done on
 * the hosts (each kind says it, see `StepDefinition.leftBehind`), as one loud
 * message with the commands to fix it; null when nothing is left.
 */
export function leftBehind(run: Run): { text: string; offer?: CommandOffer } | null {
  if (run.status === 'done') return null;
  const found: LeftBehind[] = [];
  run.steps.forEach((step, i) => {
    if (stepProblem(step)) return;
    const got = definitionOf(step)?.leftBehind?.(run, i, step as never);
    if (got) found.push(got);
  });
  if (found.length === 0) return null;
  const shown = found.slice(0, LEFT_LINES).map((f) => `• ${f.line}`);
  if (found.length > LEFT_LINES) shown.push(`• and ${found.length - LEFT_LINES} more, the same way (each named on the incident timeline by its step)`);
  return {
    text: `:rotating_light: Run \`${run.runId}\` ended ${run.status.toUpperCase()} with work left half-done on ${found.length === 1 ? 'a host' : `${found.length} hosts`} (nothing was deleted):\n${shown.join('\n')}`,
    offer: found.find((f) => f.offer)?.offer,
  };
}

export type { HostTouch, LeftBehind, Step, StepContext, StepDefinition, StepKind, StepOf, StepSpec } from './types.js';
