import type { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import type { EtcdPool } from '../etcd/pool.js';
import type { Platform } from '../platform/index.js';
import type { StepResult, StillOwns } from '../runbook/engine.js';
import type { CommandOffer, Run } from '../runbook/types.js';
import type { EtcdStepContext } from '../worker/steps/etcd-steps.js';
import type { HostStepContext } from '../worker/steps/host-steps.js';
import type { KubeStepContext } from '../worker/steps/kube-steps.js';
import type { QuorumStepContext } from '../worker/steps/quorum-steps.js';
import type { ApiserversStep } from './apiservers.js';
import type { FenceStep } from './fence.js';
import type { ForceNewClusterStep } from './force-new-cluster.js';
import type { ForceRedeploymentStep } from './force-redeployment.js';
import type { IssueCertsStep } from './issue-certs.js';
import type { KubeCheckStep } from './kube-check.js';
import type { KubeletCsrsStep } from './kubelet-csrs.js';
import type { KubeletRebootstrapStep } from './kubelet-rebootstrap.js';
import type { MemberAddLearnerStep } from './member-add-learner.js';
import type { MemberRemoveStep } from './member-remove.js';
import type { PromoteStep } from './promote.js';
import type { RestoreSnapshotStep } from './restore-snapshot.js';
import type { RewriteReferencesStep } from './rewrite-references.js';
import type { SnapshotStep } from './snapshot.js';
import type { StopAndMoveAsideStep } from './stop-and-move-aside.js';
import type { VerifyBackupStep } from './verify-backup.js';
import type { VerifyStep } from './verify.js';
import type { WaitCaughtUpStep } from './wait-caught-up.js';
import type { WriteManifestStep } from './write-manifest.js';
import type { WorkloadStepContext } from '../worker/steps/workload-steps.js';
import type { DrainStep } from './drain.js';
import type { PdbDeleteStep } from './pdb-delete.js';
import type { PdbRestoreStep } from './pdb-restore.js';
import type { StsInitialStateStep } from './sts-initial-state.js';
import type { UncordonStep } from './uncordon.js';
import type { WipeClaimStep } from './wipe-claim.js';
import type { WorkloadCheckStep } from './workload-check.js';
import type { AlarmDisarmStep } from './alarm-disarm.js';
import type { CompactStep } from './compact.js';
import type { DefragMemberStep } from './defrag-member.js';
import type { WriteCheckStep } from './write-check.js';

/** One step of a plan, of kind K with its params P. Stored in the run as JSON: P holds only JSON values. */
export interface Step<K extends string, P> {
  kind: K;
  title: string;
  /** A destructive step runs only after a second person approves it. */
  destructive: boolean;
  /** The exact operation: the etcd API call, or the shell command and the host it runs on. */
  operation: string;
  /** The member whose host the step changes over SSH, if it names one. */
  host?: string;
  params: P;
}

/** Every step a plan can hold, told apart by `kind`. */
export type StepSpec =
  | SnapshotStep
  | MemberRemoveStep
  | StopAndMoveAsideStep
  | MemberAddLearnerStep
  | WriteManifestStep
  | WaitCaughtUpStep
  | PromoteStep
  | VerifyStep
  | FenceStep
  | ForceNewClusterStep
  | VerifyBackupStep
  | RestoreSnapshotStep
  | ApiserversStep
  | KubeCheckStep
  | RewriteReferencesStep
  | KubeletRebootstrapStep
  | KubeletCsrsStep
  | IssueCertsStep

  | WorkloadCheckStep
  | PdbDeleteStep
  | StsInitialStateStep
  | DrainStep
  | WipeClaimStep
  | UncordonStep
  | PdbRestoreStep

  | ForceRedeploymentStep

  | CompactStep
  | DefragMemberStep
  | AlarmDisarmStep
  | WriteCheckStep;

export type StepKind = StepSpec['kind'];

/** The step of one kind. */
export type StepOf<K extends StepKind> = Extract<StepSpec, { kind: K }>;

/** What a step's execution can use: the run, its cluster and platform, and the adapters the step bodies take. */
export interface StepContext {
  run: Run;
  /** 0-based index of the step in the run. */
  index: number;
  cluster: ClusterConfig;
  /** How etcd runs on the cluster's masters (src/platform): the paths and shell lines of host operations. */
  platform: Platform;
  pool: EtcdPool;
  etcd: EtcdStepContext;
  host: HostStepContext;
  quorum: QuorumStepContext;
  kube: KubeStepContext;
  /** The admin cluster of a statefulset cluster (src/kube), with the etcd pool for the checks before a wipe. */
  workload: WorkloadStepContext;
  /** Fires when the run is asked to stop (cancel, reject): a long step ends its wait early. */
  stop?: AbortSignal;
  /** Fires when this worker lost the run lease: another may run the step now, so host scripts stop. */
  leaseLost?: AbortSignal;
  /** Asked right before a write to an outside system: null while this attempt still owns its step (for an undo: while the ended run still holds its cluster), else why not. */
  stillOwns?: StillOwns;
}

/** The hosts a step touches over SSH and what it runs there, for the readiness check (src/worker/host-readiness.ts). */
export interface HostTouch<S> {
  /** The commands its scripts run on the hosts it changes, beside bash builtins; the platform's own are added to these. */
  tools: string[];
  /** How a tool is used there, when its name alone says too little (`etcdctl snapshot restore`). */
  how?: Record<string, string>;
  /** The members whose hosts it touches; `tools` for a host it only reads from (then those alone). */
  members(step: S): { member: string; tools?: string[] }[];
  /**
   * Lines that print `layout:<what is wrong>` for a host not ready for this step beyond its tools
   * (a file the step counts on being there): looked at when the run is planned and before every
   * destructive step, so a run stops before it starts rather than half-way.
   */
  layout?(step: S): string[];
  /** Members the plan counts on being down: whoever approves the step confirms they are. */
  down?(step: S): string[];
}

/**
 * Everything about one kind of step, in its own file: the params (a zod schema,
 * whose type is the params type), the plan text (`spec`, which planners call
 * with what they chose), the executor, and the hosts it touches. Registered in
 * src/steps/index.ts.
 */
export interface StepDefinition<K extends StepKind> {
  readonly kind: K;
  /**
   * The params as a run holds them. A stored run is checked against it before
   * its steps run or its hosts are looked at: a run planned by an older version
   * may hold them in another shape (lists as JSON text), and is refused rather
   * than misread.
   */
  readonly params: z.ZodType<StepOf<K>['params']>;
  /** The step, title, operation text and params, from the planner's typed inputs (each kind takes its own). */
  spec(input: never): StepOf<K>;
  /** Runs the step; its params already checked against `params`. */
  execute(ctx: StepContext, step: StepOf<K>): Promise<StepResult>;
  /** The hosts it touches over SSH; absent for a step that works through the etcd or Kubernetes API only. */
  readonly hosts?: HostTouch<StepOf<K>>;
  /**
   * What a run that ends before its last step (cancelled, rejected, failed)
   * puts back of what this step changed: a deleted PDB, a StatefulSet left on
   * state existing. Asked when the step had started; idempotent; one line for
   * the thread and the timeline (null: nothing to say).
   */
  undo?(ctx: StepContext, step: StepOf<K>): Promise<string | null>;

  /**
   * What this step leaves on its host when the run ends (cancelled, rejected, failed, given up) after
   * it acted, or while it ran, and before the later steps that finish its work: one line that says so
   * with the commands that undo or finish it by hand. null: nothing is left. Said loudly in the thread
   * and on the timeline when the run ends (see `leftBehind`).
   */
  leftBehind?(run: Run, index: number, step: StepOf<K>): LeftBehind | null;
}

/** What one step left half-done, and a command to offer as a button (once per run's end). */
export interface LeftBehind {
  line: string;
  offer?: CommandOffer;
}


