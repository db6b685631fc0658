import type { BackupStore } from '../backup/store.js';
import type { Inventory } from '../config/schema.js';
import type { IncidentStore } from '../incident/store.js';
import type { EtcdPool } from '../etcd/pool.js';
import type { Logger } from '../log.js';
import type { RunNotifier } from '../runbook/engine.js';
import type { RunStore } from '../runbook/store.js';
import type { Run } from '../runbook/types.js';
import type { Chat } from '../chat/port.js';

/** What every job handler of a worker can use. */
export interface WorkerContext {
  workerId: string;
  inventory: Inventory;
  pool: EtcdPool;
  chat: Chat;
  store: RunStore;
  backups: BackupStore;
  incidents: IncidentStore;
  notifier: RunNotifier;
  /** ETCD_MEDIC_HMAC_KEY: a stored run's plan is signed with it (src/approvals/sign.ts). */
  hmacKey: string;
  enqueueStep(runId: string, index: number, tag?: string): Promise<void>;
  /** What an ended run puts back before its cluster is free (the engine's, src/steps `undoOnEnd`). */
  undoOnEnd(run: Run): Promise<string[]>;
  log: Logger;
}
