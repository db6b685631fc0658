import { z } from 'zod';
import { snapshot } from '../worker/steps/etcd-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ from: z.string(), backupId: z.string() });
export type SnapshotStep = Step<'snapshot', z.infer<typeof params>>;

/** A snapshot through the etcd API from `from` (its client URL, where the plan names it), as backup `backupId`. */
type SnapshotInput = { from: string; backupId: string } & (
  | { runbook: 'replace'; fromUrl: string; /** dir/cluster in the backup store */ store: string; /** the member was healthy when planned (--force) */ forced?: string }
  | { runbook: 'restore' }
  | { runbook: 'restore-quorum'; fromUrl: string; store: string }
);

/** The run's own backup, taken and verified before anything changes. */
export const snapshotStep = {
  kind: 'snapshot',
  params,
  spec(i: SnapshotInput): SnapshotStep {
    const id = i.backupId;
    const step = (title: string, operation: string): SnapshotStep => ({ kind: 'snapshot', title, destructive: false, operation, params: { from: i.from, backupId: id } });
    switch (i.runbook) {
      case 'replace':
        return step(
          'Take and verify a snapshot',
          `maintenance.snapshot() from ${i.from} (${i.fromUrl}) → backup ${id} in ${i.store} (snapshot_${id}.db and static_kuberesources_${id}.tar.gz); verified by its sha256 trailer and etcdctl snapshot status${i.forced ? ` (FORCED: ${i.forced} was healthy when planned)` : ''}`,
        );
      case 'restore':
        return step('Back up the current state first', `maintenance.snapshot() from ${i.from} → backup ${id}; verified (so this restore can itself be undone)`);
      case 'restore-quorum':
        return step(`Snapshot ${i.from} before touching anything`, `maintenance.snapshot() from ${i.from} (${i.fromUrl}) → backup ${id} in ${i.store}; verified`);
    }
  },
  execute: (ctx, step) => snapshot(ctx.etcd, step, ctx.run, ctx.stop),
} satisfies StepDefinition<'snapshot'>;
