import type { CsrDecideData } from '../csr/review.js';

/** The work the Slack side can ask of a worker. Each kind of job is one entry here. */
export type JobRequest =
  | { name: 'status'; data: { cluster: string } }
  | { name: 'watch'; data: { cluster: string } }
  | { name: 'nodes'; data: { cluster: string } }
  | { name: 'plan-replace'; data: { cluster: string; target: string; force: boolean } }
  | { name: 'plan-restore-quorum'; data: { cluster: string; from?: string; snapshot?: string } }
  | { name: 'plan-restore'; data: { cluster: string; backupId: string } }
  | { name: 'plan-defrag'; data: { cluster: string } }
  | { name: 'step'; data: { runId: string; index: number } }
  | { name: 'cancel'; data: { runId: string } }
  | { name: 'backup'; data: { cluster: string; scheduled?: boolean } }
  | { name: 'list-backups'; data: { cluster: string } }
  | { name: 'import-backup'; data: { cluster: string; member: string; path: string } }
  | { name: 'certs'; data: { cluster: string } }
  | { name: 'drift'; data: { cluster: string } }
  | { name: 'plan-drift-fix'; data: { cluster: string } }
  | { name: 'plan-kubelets-renew'; data: { cluster: string; nodes: string[] } }
  | { name: 'incident'; data: { action: 'start' | 'close' | 'note' | 'timeline'; text?: string } }
  | { name: 'csr'; data: { cluster: string } }
  | { name: 'csr-decide'; data: CsrDecideData };

/** What travels on the queue: the request plus who asked, where to answer. */
export interface JobEnvelope {
  request: JobRequest;
  requestId: string;
  userId: string;
  channelId: string;
  /** Slack's response_url for this command: a way to answer even where the bot may not post. */
  responseUrl?: string;
  requestedAt: string;
}
