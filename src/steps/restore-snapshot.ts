import { basename } from 'node:path';
import { z } from 'zod';
import type { BackupFacts } from '../backup/store.js';
import type { ClusterConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { restoreSnapshot } from '../worker/steps/quorum-steps.js';
import { CHECKED_IO, MOVE_ASIDE, SNAPSHOT_TOOL, uniq } from './host-tools.js';
import { sh } from '../ssh/shell.js';
import { sshText } from './plan-text.js';
import { memberOnHost, onHost, type HostPlace } from './places.js';
import type { Step, StepDefinition } from './types.js';

const params = memberOnHost.extend({
  backupId: z.string(),
  /** The new cluster token. */
  token: z.string(),
  /** The member's client URL, to see it lead alone (restore-quorum). */
  endpoint: z.string(),
  /** Every member restored from the same snapshot (restore); absent: this member alone, as a one-member cluster. */
  initialCluster: z.string().optional(),
});
export type RestoreSnapshotStep = Step<'restore-snapshot', z.infer<typeof params>>;

type RestoreInput = { cluster: ClusterConfig; backup: BackupFacts; place: HostPlace; token: string; endpoint: string } & (
  | { runbook: 'restore'; initialCluster: string }
  | { runbook: 'restore-quorum' }
);

/** A verified backup restored on a member's host (checked offline), and etcd started on it. */
export const restoreSnapshotStep = {
  kind: 'restore-snapshot',
  params,
  spec(i: RestoreInput): RestoreSnapshotStep {
    const { backup: b, place: p, token } = i;
    const platform = platformOf(i.cluster);
    const ssh = sshText(i.cluster, p.name);
    const initialCluster = i.runbook === 'restore' ? i.initialCluster : `${p.name}=${p.peerUrl}`;
    const restore = `upload ${b.snapshotFile}; etcdctl snapshot restore --name ${p.name} --initial-cluster ${initialCluster} --initial-cluster-token ${token} --initial-advertise-peer-urls ${p.peerUrl} --data-dir ${p.dataDir}; refuse unless the restored database reads revision ${b.revision} offline (etcdctl snapshot status); write ${p.config} with that initial cluster and token; ${platform.startText('start', { wait: i.runbook !== 'restore' })}`;
    const base = { ...onHost(p), backupId: b.id, token, endpoint: i.endpoint };
    if (i.runbook === 'restore') {
      return { kind: 'restore-snapshot', title: `Restore backup ${b.id} on ${p.name}`, destructive: false, operation: `on ${ssh}: ${restore}`, params: { ...base, initialCluster } };
    }
    return {
      kind: 'restore-snapshot',
      title: `Restore backup ${b.id} onto ${p.name} as a one-member cluster`,
      destructive: true,
      operation: `on ${ssh}: ${platform.stopText(p)}; mv ${p.dataDir} ${p.dataAside}; ${restore}; wait until it leads`,
      params: base,
    };
  },
  execute: (ctx, step) => restoreSnapshot(ctx.quorum, step, ctx.leaseLost),
  hosts: {
    tools: uniq([...MOVE_ASIDE, ...CHECKED_IO, 'touch', 'tail', 'date', SNAPSHOT_TOOL]),
    how: { [SNAPSHOT_TOOL]: `${SNAPSHOT_TOOL} snapshot restore` },
    members: (step) => [{ member: step.params.name }],
    // The step starts etcd from the member's own config (or the copy this run keeps): a host whose config an earlier
    // run left aside (a restore that failed there) would be restored and then not started. Refused before anything acts.
    layout: (step) => {
      const { config, configAside, asideDir, name } = step.params;
      const earlier = `${asideDir}/${basename(config)}.r-`;
      return [
        sh`if [ ! -e ${config} ] && [ ! -e ${configAside} ]; then medic_kept=$(ls -t ${earlier}* 2>/dev/null | head -n 1 || true); echo "layout:"${name}" has no etcd config at "${config}", so a restored etcd could not be started there"\${medic_kept:+"; an earlier run kept it at $medic_kept: put it back (mv $medic_kept "${config}") and ask again"}; fi`,
      ];
    },
  },
} satisfies StepDefinition<'restore-snapshot'>;
