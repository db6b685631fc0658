import type { WorkloadPlace } from '../platform/index.js';
import { drainStep } from '../steps/drain.js';
import { memberAddLearnerStep } from '../steps/member-add-learner.js';
import { memberRemoveStep } from '../steps/member-remove.js';
import { pdbDeleteStep } from '../steps/pdb-delete.js';
import { pdbRestoreStep } from '../steps/pdb-restore.js';
import { promoteStep } from '../steps/promote.js';
import { stsInitialStateStep } from '../steps/sts-initial-state.js';
import { uncordonStep } from '../steps/uncordon.js';
import { wipeClaimStep } from '../steps/wipe-claim.js';
import { workloadCheckStep } from '../steps/workload-check.js';
import type { ClusterConfig } from '../config/schema.js';
import { verifyStep } from '../steps/verify.js';
import { waitCaughtUpStep } from '../steps/wait-caught-up.js';
import type { StepSpec } from './types.js';

/**
 * The replace of a member of etcd as a StatefulSet in an admin cluster, in the
 * order of the GKE on-prem procedure (seeds/gke-replace-failed-etcd-replica):
 * the PDB saved and deleted, a snapshot, the template on state existing, the
 * node drained, the member removed, its data moved aside by a utility pod, the
 * member added as a learner, the node uncordoned so its pod starts and joins,
 * promoted once caught up, then the template on state new and the PDB again.
 * Everything through the admin cluster's API and the etcd API; no SSH.
 */
export function workloadReplaceSteps(i: {
  cluster: ClusterConfig;
  place: WorkloadPlace;
  runId: string;
  saveDir: string;
  snapshot: StepSpec;
  /** The member as etcd lists it now; absent when it is already out of the list. */
  live?: { idHex: string };
  peerUrl: string;
  voters: number;
  minRevision: number;
}): StepSpec[] {
  const { place, runId, saveDir, peerUrl } = i;
  const name = place.pod;
  return [
    workloadCheckStep.spec({ place }),
    pdbDeleteStep.spec({ place, saveDir, runId }),
    i.snapshot,
    stsInitialStateStep.spec({ place, value: 'existing' }),
    drainStep.spec({ place }),
    ...(i.live ? [memberRemoveStep.spec({ idHex: i.live.idHex, name, peerUrl })] : []),
    wipeClaimStep.spec({ place, peerUrl, runId }),
    memberAddLearnerStep.spec({ name, peerUrl, etcdctl: true }),
    uncordonStep.spec({ place }),
    waitCaughtUpStep.spec({ runbook: 'replace', cluster: i.cluster, name, peerUrl }),
    promoteStep.spec({ name, peerUrl }),
    verifyStep.spec({ runbook: 'replace', voters: i.voters, minRevision: i.minRevision }),
    stsInitialStateStep.spec({ place, value: 'new' }),
    pdbRestoreStep.spec({ place, saveDir, runId }),
  ];
}
