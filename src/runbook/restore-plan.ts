import { backupId, type BackupFacts } from '../backup/store.js';
import type { ClusterConfig, Inventory } from '../config/schema.js';
import { hostRunbookRefusal, platformOf } from '../platform/index.js';
import type { StatusReport } from '../status/assess.js';
import { flagValuesProblem } from './flag-values.js';
import { newRun } from './new-run.js';
import type { PlanOutcome } from './replace-plan.js';
import { apiserverPlaces, hostPlaces } from './restore-quorum-plan.js';
import type { ObservedState, StepSpec } from './types.js';
import { apiserversStep } from '../steps/apiservers.js';
import { fenceStep } from '../steps/fence.js';
import { forceRedeploymentStep } from '../steps/force-redeployment.js';
import { kubeCheckStep } from '../steps/kube-check.js';
import { restoreSnapshotStep } from '../steps/restore-snapshot.js';
import { snapshotStep } from '../steps/snapshot.js';
import { verifyBackupStep } from '../steps/verify-backup.js';
import { verifyStep } from '../steps/verify.js';

export interface RestoreRequest {
  runId: string;
  backup: BackupFacts;
  requestedBy: string;
  channelId: string;
}

/**
 * The whole cluster back to a previous state: every member restored from the
 * same verified snapshot with the same initial cluster and a new token, with
 * kube-apiserver stopped meanwhile. One approval covers the stop, since from
 * there on the old data is aside and only the restore brings the cluster back.
 */
export function planRestore(inventory: Inventory, cluster: ClusterConfig, report: StatusReport, state: ObservedState, req: RestoreRequest, now: Date): PlanOutcome {
  const hostless = hostRunbookRefusal(cluster, '/etcd restore');
  if (hostless) return { ok: false, reason: hostless };
  const b = req.backup;
  const places = cluster.members.map((m) => hostPlaces(cluster, m, req.runId, report.members));
  const initialCluster = places.map((p) => `${p.name}=${p.peerUrl}`).sort().join(',');
  const token = `${cluster.name}-${req.runId}`;
  const unwritable = flagValuesProblem(cluster, { 'initial-cluster': initialCluster, 'initial-cluster-token': token });
  if (unwritable) return { ok: false, reason: unwritable };
  const answering = report.members.find((m) => m.status && m.isLeader) ?? report.members.find((m) => m.status);
  const apis = apiserverPlaces(cluster, cluster.members, req.runId);
  const lastSeen = Math.max(state.revision, ...report.members.map((m) => m.status?.revision ?? 0));

  const steps: StepSpec[] = [verifyBackupStep.spec({ backup: b })];
  if (answering) steps.push(snapshotStep.spec({ runbook: 'restore', from: answering.name, backupId: backupId(now) }));
  steps.push(
    apiserversStep.spec({ cluster, action: 'stop', places: apis }),
    fenceStep.spec({ runbook: 'restore', cluster, places }),
    ...places.map((p) => restoreSnapshotStep.spec({ runbook: 'restore', cluster, backup: b, place: p, token, endpoint: p.clientUrl, initialCluster })),
    verifyStep.spec({ runbook: 'restore', voters: places.length, minRevision: b.revision }),
    apiserversStep.spec({ cluster, action: 'start', places: apis }),
    kubeCheckStep.spec({ cluster }),
    ...redeploySteps(cluster, req.runId),
  );

  const lost = Math.max(0, lastSeen - b.revision);
  const rationale = `every member restored from backup ${b.id} (revision ${b.revision}, taken ${b.takenAt}) with a new cluster token. Data loss: the last revision seen was ${lastSeen}: ${lost} revision${lost === 1 ? '' : 's'} after the snapshot will be gone. Pause whatever manages the control plane's machines until this ends.`;
  const run = newRun(
    inventory,
    { runId: req.runId, runbook: 'restore', title: `Restore ${cluster.name} to backup ${b.id}`, rationale, cluster: cluster.name, target: b.id, steps, plannedState: state, requestedBy: req.requestedBy, channelId: req.channelId },
    now,
  );
  return { ok: true, run };
}

/**
 * Where an operator owns etcd's static pods (OpenShift 4.4+), a restore ends
 * by telling it to roll out a new revision of them, as OpenShift's restore
 * procedure does. Without a kubeconfig the step is still planned: it cannot
 * patch, so the run ends with a warning that gives the `oc patch` to run by
 * hand, rather than "every step done" with the manifests the run wrote left
 * in place and nobody told.
 */
export function redeploySteps(cluster: ClusterConfig, runId: string): StepSpec[] {
  const resource = platformOf(cluster).etcdOperator;
  return resource ? [forceRedeploymentStep.spec({ cluster, resource, runId })] : [];
}
