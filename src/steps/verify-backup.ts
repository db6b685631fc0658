import { z } from 'zod';
import type { BackupFacts } from '../backup/store.js';
import { verifyBackup } from '../worker/steps/quorum-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ backupId: z.string() });
export type VerifyBackupStep = Step<'verify-backup', z.infer<typeof params>>;

/**
 * What a plan says of an imported OpenShift backup's static_kuberesources
 * tarball. The restore brings back etcd's data and leaves each master's static
 * pods as they are now; unpacking the tarball (what OpenShift's
 * cluster-restore.sh does) would overwrite the control plane's current
 * static-pod-resources in place, which nothing here may do without a copy
 * aside, and which revision to run is the platform's business. So it stays in
 * the store, named, for whoever needs that revision back.
 */
function importedNote(b: BackupFacts): string {
  if (b.source !== 'imported' || !b.imported) return '';
  const from = `imported from ${b.imported.member}:${b.imported.dir}/${b.imported.snapshotFile}, written by OpenShift's cluster-backup.sh at ${b.imported.stampedAt}`;
  if (!b.resourcesFile) return `. This backup was ${from}, without its static_kuberesources tarball`;
  return `. This backup was ${from}; its ${b.resourcesFile} (${b.imported.resourceDirs.slice(0, 4).join(', ')}${b.imported.resourceDirs.length > 4 ? ', …' : ''}) stays in the backup store and is not unpacked: this restore leaves every master's static pods and their resources as they are. To run that time's control-plane revisions too, unpack it on each master as cluster-restore.sh does (\`tar -C /etc/kubernetes -xzf ${b.resourcesFile} static-pod-resources\`, after keeping a copy of /etc/kubernetes/static-pod-resources)`;
}

/** The backup a restore starts from, checked again against what was recorded when it was taken. */
export const verifyBackupStep = {
  kind: 'verify-backup',
  params,
  spec: (i: { backup: BackupFacts }): VerifyBackupStep => ({
    kind: 'verify-backup',
    title: `Verify backup ${i.backup.id}`,
    destructive: false,
    operation: `sha256 trailer and etcdctl snapshot status of ${i.backup.snapshotFile} must still match what was recorded (revision ${i.backup.revision}, sha256 ${i.backup.sha256.slice(0, 16)}…)${importedNote(i.backup)}`,
    params: { backupId: i.backup.id },
  }),
  execute: (ctx, step) => verifyBackup(ctx.quorum, step),
} satisfies StepDefinition<'verify-backup'>;
