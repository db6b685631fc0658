import { backupId, type BackupFacts } from '../backup/store.js';
import type { ClusterConfig, Inventory } from '../config/schema.js';
import type { StatusReport } from '../status/assess.js';
import { kubeCheckStep } from './kube-check-plan.js';
import { newRun } from './new-run.js';
import type { PlanOutcome } from './replace-plan.js';
import { platformOf } from '../platform/index.js';
import { apiserverOperation, apiserverPlaces, hostPlaces } from './restore-quorum-plan.js';
import type { ObservedState, StepSpec } from './types.js';

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
  const b = req.backup;
  const places = cluster.members.map((m) => hostPlaces(cluster, m, req.runId, report.members));
  const initialCluster = places.map((p) => `${p.name}=${p.peerUrl}`).sort().join(',');
  const token = `${cluster.name}-${req.runId}`;
  const answering = report.members.find((m) => m.status && m.isLeader) ?? report.members.find((m) => m.status);
  const apis = apiserverPlaces(cluster, cluster.members, req.runId);
  const platform = platformOf(cluster);
  const lastSeen = Math.max(state.revision, ...report.members.map((m) => m.status?.revision ?? 0));
  const ssh = (name: string) => {
    const m = cluster.members.find((x) => x.name === name)!;
    return `${m.ssh.user}@${m.host}:${m.ssh.port}`;
  };

  const steps: StepSpec[] = [
    {
      kind: 'verify-backup',
      title: `Verify backup ${b.id}`,
      destructive: false,
      operation: `sha256 trailer and etcdctl snapshot status of ${b.snapshotFile} must still match what was recorded (revision ${b.revision}, sha256 ${b.sha256.slice(0, 16)}…)`,
      params: { backupId: b.id },
    },
  ];
  if (answering) {
    steps.push({
      kind: 'snapshot',
      title: 'Back up the current state first',
      destructive: false,
      operation: `maintenance.snapshot() from ${answering.name} → backup ${backupId(now)}; verified (so this restore can itself be undone)`,
      params: { from: answering.name, backupId: backupId(now) },
    });
  }
  steps.push(
    {
      kind: 'apiservers',
      title: 'Stop kube-apiserver on every master',
      destructive: true,
      operation: apiserverOperation(cluster, apis, 'stop'),
      params: { action: 'stop', hosts: JSON.stringify(apis) },
    },
    {
      kind: 'fence',
      title: `Stop etcd on ${places.map((p) => p.name).join(', ')} and move their data aside`,
      destructive: true,
      operation: places.map((p) => `on ${ssh(p.name)}: ${platform.stopText(p)}; wait until etcd is gone (nothing on ${p.listen.join(', ')}, no etcd process on ${p.dataDir}); mv ${p.dataDir} ${p.dataAside}`).join(' | '),
      params: { hosts: JSON.stringify(places), unconfirmed: '[]', stopRunning: true },
    },
    ...places.map(
      (p): StepSpec => ({
        kind: 'restore-snapshot',
        title: `Restore backup ${b.id} on ${p.name}`,
        destructive: false,
        operation: `on ${ssh(p.name)}: upload ${b.snapshotFile}; etcdctl snapshot restore --name ${p.name} --initial-cluster ${initialCluster} --initial-cluster-token ${token} --initial-advertise-peer-urls ${p.peerUrl} --data-dir ${p.dataDir}; refuse unless the restored database reads revision ${b.revision} offline (etcdctl snapshot status); write ${p.config} with that initial cluster and token; ${platform.startText('start', { wait: false })}`,
        params: {
          name: p.name,
          config: p.config,
          configAside: p.configAside,
          asideDir: p.asideDir,
          dataDir: p.dataDir,
          dataAside: p.dataAside,
          clientHost: p.clientHost,
          peerUrl: p.peerUrl,
          listen: JSON.stringify(p.listen),
          backupId: b.id,
          token,
          endpoint: p.clientUrl,
          initialCluster,
        },
      }),
    ),
    {
      kind: 'verify',
      title: 'Verify every member healthy at the snapshot',
      destructive: false,
      operation: `every member answers with one leader, ${places.length} voters; revision ≥ ${b.revision} (the snapshot's)`,
      params: { voters: places.length, minRevision: b.revision },
    },
    {
      kind: 'apiservers',
      title: 'Start kube-apiserver again',
      destructive: false,
      operation: apiserverOperation(cluster, apis, 'start'),
      params: { action: 'start', hosts: JSON.stringify(apis) },
    },
    kubeCheckStep(cluster),
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
