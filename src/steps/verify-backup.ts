import { z } from 'zod';
import type { BackupFacts } from '../backup/store.js';
import { verifyBackup } from '../worker/steps/quorum-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ backupId: z.string() });
export type VerifyBackupStep = Step<'verify-backup', z.infer<typeof params>>;

/** The backup a restore starts from, checked again against what was recorded when it was taken. */
export const verifyBackupStep = {
  kind: 'verify-backup',
  params,
  spec: (i: { backup: BackupFacts }): VerifyBackupStep => ({
    kind: 'verify-backup',
    title: `Verify backup ${i.backup.id}`,
    destructive: false,
    operation: `sha256 trailer and etcdctl snapshot status of ${i.backup.snapshotFile} must still match what was recorded (revision ${i.backup.revision}, sha256 ${i.backup.sha256.slice(0, 16)}…)`,
    params: { backupId: i.backup.id },
  }),
  execute: (ctx, step) => verifyBackup(ctx.quorum, step),
} satisfies StepDefinition<'verify-backup'>;
