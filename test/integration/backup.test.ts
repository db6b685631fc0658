import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { reverifyBackup, verifySnapshot } from '../../src/backup/take.js';
import { run } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf } from '../support/slack-view.js';

describe('/etcd backup and /etcd backups against the lab', () => {
  let t: MedicLab;
  let store: DirectoryBackupStore;

  beforeAll(async () => {
    t = await startMedicLab('backup', 36);
    store = new DirectoryBackupStore(t.config.inventory.backups.dir);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('takes a verified snapshot with the host files, tells the channel its facts, and lists it', async () => {
    for (let i = 0; i < 25; i++) await t.lab.etcdctl(['put', `/backup/k${i}`, `v${i}`]);
    const before = Number(/"revision":(\d+)/.exec((await t.lab.etcdctl(['get', 'x', '-w', 'json'])).stdout)![1]);

    const since = t.slack.lastSeq;
    await t.command('backup');
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 30_000, since);
    const text = textOf(msg);
    const id = /\*(\d{4}-\d{2}-\d{2}_\d{6})\* of \*lab\*/.exec(text)![1]!;
    // The facts in the message are what etcdctl itself reads from the file.
    const status = JSON.parse((await run('etcdctl', ['snapshot', 'status', join(t.config.inventory.backups.dir, 'lab', `snapshot_${id}.db`), '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } })).stdout) as { revision: number; totalKey: number; hash: number };
    expect(status.revision).toBeGreaterThanOrEqual(before);
    expect(text).toContain(`revision ${status.revision}, ${status.totalKey} db keys (all revisions), hash ${status.hash}`);
    expect(text).toContain(`\`snapshot_${id}.db\`, \`static_kuberesources_${id}.tar.gz\` (the member's etcd config and certificates)`);
    const revision = status.revision;
    const keys = status.totalKey;

    const facts = (await store.get('lab', id))!;
    expect(facts).toMatchObject({ revision, totalKeys: keys, takenBy: 'UALICE' });
    // The archive holds what rebuilding a member needs: its etcd manifest and pki.
    const listing = (await run('tar', ['tzf', join(t.config.inventory.backups.dir, 'lab', facts.resourcesFile!)])).stdout;
    const host = t.lab.host(facts.fromMember);
    expect(listing).toContain(`${host.manifestsDir.slice(1)}/etcd.yaml`);
    expect(listing).toContain(`${host.pkiDir.slice(1)}/server.key`);

    const list = await t.command('backups');
    expect(await answerAt(t.slack, list.responseUrl)).toMatch(new RegExp(`\`${id}\` [\\d.]+ KB, revision ${revision}, ${keys} db keys, from m\\d, by <@UALICE>`));
  });

  it('rejects a truncated or corrupted snapshot, and a backup file changed after it was taken', async () => {
    const [facts] = await store.list('lab');
    const file = store.snapshotPath(facts!);
    const dir = join(t.lab.opts.root, 'damaged');
    await run('mkdir', ['-p', dir]);

    const truncated = join(dir, 'truncated.db');
    writeFileSync(truncated, readFileSync(file).subarray(0, Math.floor(facts!.bytes / 2)));
    await expect(verifySnapshot(truncated)).rejects.toThrow('truncated.db: its sha256 trailer does not match its contents (truncated or corrupted)');

    const corrupted = join(dir, 'corrupted.db');
    const buf = readFileSync(file);
    buf[4096] = buf[4096]! ^ 0xff;
    writeFileSync(corrupted, buf);
    await expect(verifySnapshot(corrupted)).rejects.toThrow('corrupted.db: its sha256 trailer does not match');

    // The stored backup itself is damaged later: re-verification before a restore refuses it.
    copyFileSync(file, `${file}.orig`);
    writeFileSync(file, buf);
    await expect(reverifyBackup(store, facts!)).rejects.toThrow('sha256 trailer does not match');
    copyFileSync(`${file}.orig`, file);
    await expect(reverifyBackup(store, facts!)).resolves.toBeUndefined();
    expect(existsSync(file)).toBe(true);
  });
});

describe('scheduled backups', () => {
  let t: MedicLab;

  beforeAll(async () => {
    // Every second, keeping two, reported in #backups.
    t = await startMedicLab('backup-schedule', 37, { backups: { schedule: '* * * * * *', keep: 2, channel: 'CBACKUPS' } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('run on schedule, report in the channel, and keep only the newest', async () => {
    const posted = () => t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.channel === 'CBACKUPS' && String(r.body.text).includes('Backup taken for the backup schedule'));
    const deadline = Date.now() + 30_000;
    while (posted().length < 4 && Date.now() < deadline) await t.slack.waitFor(() => true, 2000, t.slack.lastSeq).catch(() => undefined);
    expect(posted().length).toBeGreaterThanOrEqual(4);
    expect(posted().some((r) => /Retention \(keep 2\): removed \d{4}-\d{2}-\d{2}_\d{6}/.test(textOf(r)))).toBe(true);
    await t.medic.stop();
    const store = new DirectoryBackupStore(t.config.inventory.backups.dir);
    expect((await store.list('lab')).length).toBe(2);
  });
});
