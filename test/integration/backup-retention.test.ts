import { existsSync, renameSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const ID = /\*(\d{4}-\d{2}-\d{2}_\d{6}(?:-\d+)?)\* of \*lab\*/;

describe('retention never prunes a backup that an unfinished run uses', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('backup-retention', 66, { roles: ROLES, backups: { keep: 1 } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  async function backup(): Promise<{ id: string; text: string }> {
    const since = t.slack.lastSeq;
    await t.command('backup', { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /Backup (taken|of lab)/.test(String(r.body.text)), 30_000, since);
    const text = textOf(msg);
    const id = ID.exec(text)?.[1];
    if (!id) throw new Error(`no backup taken: ${text}`);
    return { id, text };
  }

  it('a restore-quorum --snapshot plan awaiting approval keeps its backup through backups with keep=1, and the restore proceeds', async () => {
    const store = new DirectoryBackupStore(t.config.inventory.backups.dir);
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/kept/k${i}`, `v${i}`]);
    const { id } = await backup();

    // The fault: two of three members die and their data dirs are gone.
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      renameSync(t.lab.host(name).dataDir, `${t.lab.host(name).dataDir}.lost-${Date.now()}`);
    }
    const since = t.slack.lastSeq;
    await t.command(`restore-quorum --snapshot ${id}`, { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Restore quorum of lab|\/etcd restore-quorum.* refused)/.test(String(r.body.text)), 60_000, since);
    expect(String(plan.body.text)).toMatch(/^Restore quorum of lab/);
    const runId = /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]!;
    // Step 1 (verify the backup) runs by itself; step 2 (stop kube-apiserver) waits for approval.
    const gate = await waitForGate(t.slack, plan.ts!, 1);

    // Two more backups while the plan waits for approval, each followed by retention keep=1.
    const b2 = await backup();
    const b3 = await backup();
    for (const b of [b2, b3]) expect(b.text).toContain(`Retention (keep 1) kept ${id}: run \`${runId}\` (Restore quorum of lab, awaiting approval) uses it.`);
    expect(b3.text).toContain(`Retention (keep 1): removed ${b2.id}.`);
    const facts = await store.get('lab', id);
    expect(facts).not.toBeNull();
    expect(existsSync(store.snapshotPath(facts!))).toBe(true);

    // The restore goes on from that very backup.
    // Approvals for stopping kube-apiserver, the fence and the restore.
    for (const [step, b] of [[1, gate], [2, null], [3, null]] as const) {
      const buttons = b ?? (await waitForGate(t.slack, plan.ts!, step));
      const c = await t.click({ user: 'UBOB', messageTs: plan.ts!, actionId: 'medic_approve', blockId: buttons.blockId, value: buttons.approve });
      expect(await answerAt(t.slack, c.responseUrl)).toContain(`Approved step ${step + 1}`);
    }
    await waitForRunStatus(t.slack, plan.ts!, 'DONE', 240_000);
    expect(threadOf(t.slack, plan.ts!).join('\n')).toContain(id);
    const { stdout } = await t.lab.etcdctl(['get', '/kept/', '--prefix', '--keys-only'], [t.lab.host('m2').clientUrl]);
    expect(stdout.split('\n').filter(Boolean).length).toBe(20);
  });
});

describe('scheduled backups while a run is open on the cluster', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('backup-schedule-run', 67, { backups: { schedule: '* * * * * *', keep: 3, channel: 'CBACKUPS' } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('are skipped with a message saying which run and what to do, and resume after it ends', async () => {
    const inBackups = (re: RegExp, since: number) => t.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === 'CBACKUPS' && re.test(String(r.body.text)), 30_000, since);
    await inBackups(/Backup taken for the backup schedule/, 0);

    const since = t.slack.lastSeq;
    await t.command('replace m3 --force');
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
    const runId = /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]!;
    await waitForGate(t.slack, plan.ts!, 1);
    const skipped = textOf(await inBackups(/Scheduled backup of lab skipped/, t.slack.lastSeq));
    expect(skipped).toBe(
      `:fast_forward: Scheduled backup of lab skipped: run \`${runId}\` (Replace m3 in lab) is in progress on this cluster (awaiting approval), and a snapshot in the middle of it could catch etcd stopped or half-restored. The schedule resumes after the run ends; \`/etcd backup lab\` takes one now if you need it.`,
    );

    await t.command(`cancel ${runId}`);
    await waitForRunStatus(t.slack, plan.ts!, 'CANCELLED', 30_000);
    const after = t.slack.lastSeq;
    await inBackups(/Backup taken for the backup schedule/, after);
  });
});
