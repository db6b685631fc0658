import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { run, waitFor } from '../../src/lab/proc.js';
import { ackText } from '../../src/lab/signed-requests.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { answerAt, latest, planRun, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };
const OLD = '2020-05-10_231500';
const NEW = '2020-05-11_080543';

/** Each file of a directory with its sha256 and mtime: the host before and after an import must be the same. */
function fingerprint(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((f) => `${f} ${createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')} ${statSync(join(dir, f)).mtimeMs}`);
}

describe('/etcd backup import: backups OpenShift’s cluster-backup.sh wrote on a master', () => {
  let t: MedicLab;
  let store: DirectoryBackupStore;
  let backupDir: string;
  let revisionNew = 0;

  beforeAll(async () => {
    t = await startMedicLab('backup-import', 111, { roles: ROLES });
    store = new DirectoryBackupStore(t.config.inventory.backups.dir);
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** `/etcd backup import …` as UALICE: the channel's answer. */
  async function importing(args: string): Promise<string> {
    const since = t.slack.lastSeq;
    await t.command(`backup import ${args}`, { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^:(inbox_tray|information_source|x): /.test(String(r.body.text)), 60_000, since);
    return textOf(msg);
  }

  const status = async (file: string) =>
    JSON.parse((await run('etcdctl', ['snapshot', 'status', file, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } })).stdout) as { revision: number; totalKey: number; hash: number };

  it('imports the newest pair of a directory with its facts, names the other one, lists it, and leaves the host as it was', async () => {
    const m1 = t.lab.host('m1');
    // As cluster-backup.sh lays it out on a master: /etc/kubernetes/static-pod-resources/<pod>-<revision>, tarred relative
    // to /etc/kubernetes, then `etcdctl snapshot save`, both named with `date "+%F_%H%M%S"`, twice (an older pair first).
    const kube = join(m1.root, 'etc/kubernetes');
    for (const d of ['kube-apiserver-pod-7/secrets/localhost-recovery-client-token', 'kube-controller-manager-pod-5/configmaps/config', 'kube-scheduler-pod-6/configmaps/config', 'etcd-pod-3/configmaps/etcd-pod']) {
      mkdirSync(join(kube, 'static-pod-resources', d), { recursive: true });
      writeFileSync(join(kube, 'static-pod-resources', d, 'data'), `${d}\n`);
    }
    backupDir = join(m1.root, 'home/core/assets/backup');
    mkdirSync(backupDir, { recursive: true });
    const pods = ['kube-apiserver-pod-7', 'kube-controller-manager-pod-5', 'kube-scheduler-pod-6', 'etcd-pod-3'].map((p) => `static-pod-resources/${p}`);
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/ocp/old${i}`, `v${i}`]);
    await run('tar', ['-cpzf', join(backupDir, `static_kuberesources_${OLD}.tar.gz`), '-C', kube, ...pods]);
    await t.lab.etcdctl(['snapshot', 'save', join(backupDir, `snapshot_${OLD}.db`)], [m1.clientUrl]);
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/ocp/k${i}`, `v${i}`]);
    await run('tar', ['-cpzf', join(backupDir, `static_kuberesources_${NEW}.tar.gz`), '-C', kube, ...pods]);
    await t.lab.etcdctl(['snapshot', 'save', join(backupDir, `snapshot_${NEW}.db`)], [m1.clientUrl]);
    const st = await status(join(backupDir, `snapshot_${NEW}.db`));
    revisionNew = st.revision;
    const before = fingerprint(backupDir);

    const text = await importing(`m1 ${backupDir}`);
    expect(text).toContain(`:inbox_tray: Backup imported for <@UALICE>: *${NEW}* of *lab* imported from m1 (${m1.clientUrl.replace(/^https:\/\/|:\d+$/g, '')}) ${backupDir}/snapshot_${NEW}.db, taken by cluster-backup.sh at 2020-05-11 08:05:43 UTC (the time in its name)`);
    // Its facts are what etcdctl itself reads from the file on the host.
    expect(text).toContain(`revision ${st.revision}, ${st.totalKey} db keys (all revisions), hash ${st.hash}`);
    expect(text).toContain(`\`snapshot_${NEW}.db\`, \`static_kuberesources_${NEW}.tar.gz\` (OpenShift's static pod resources: static-pod-resources/etcd-pod-3, static-pod-resources/kube-apiserver-pod-7, static-pod-resources/kube-controller-manager-pod-5, static-pod-resources/kube-scheduler-pod-6)`);
    expect(text).toContain(`${backupDir} also holds \`snapshot_${OLD}.db\`; the newest, snapshot_${NEW}.db, was taken (as OpenShift's cluster-restore.sh takes the last one). To import another: \`/etcd backup lab import m1 ${backupDir}/snapshot_${OLD}.db\``);
    expect(text).toContain(`Restore with \`/etcd restore ${NEW} lab\``);

    const facts = (await store.get('lab', NEW))!;
    expect(facts).toMatchObject({
      id: NEW,
      takenAt: '2020-05-11T08:05:43.000Z',
      takenBy: 'UALICE',
      fromMember: 'm1',
      revision: st.revision,
      totalKeys: st.totalKey,
      hash: st.hash,
      source: 'imported',
      resourcesFile: `static_kuberesources_${NEW}.tar.gz`,
      imported: { member: 'm1', dir: backupDir, snapshotFile: `snapshot_${NEW}.db`, resourcesFile: `static_kuberesources_${NEW}.tar.gz`, stampedAt: '2020-05-11T08:05:43.000Z' },
    });
    // Byte for byte what the master holds, tarball included.
    expect(readFileSync(store.snapshotPath(facts))).toEqual(readFileSync(join(backupDir, `snapshot_${NEW}.db`)));
    expect(readFileSync(join(t.config.inventory.backups.dir, 'lab', facts.resourcesFile!))).toEqual(readFileSync(join(backupDir, `static_kuberesources_${NEW}.tar.gz`)));
    expect(statSync(store.snapshotPath(facts)).mode & 0o777).toBe(0o600);

    const list = await t.command('backups', { user: 'UALICE' });
    expect(await answerAt(t.slack, list.responseUrl)).toContain(`\`${NEW}\` `);
    expect(await answerAt(t.slack, list.responseUrl)).toMatch(new RegExp(`revision ${st.revision}, ${st.totalKey} db keys, imported from m1:${backupDir} by <@UALICE> \\(snapshot_${NEW}\\.db \\+ static_kuberesources_${NEW}\\.tar\\.gz; kept whatever the retention\\)`));

    // Importing it again keeps nothing new.
    expect(await importing(`m1 ${backupDir}/snapshot_${NEW}.db`)).toContain(`snapshot_${NEW}.db from m1:${backupDir} is already in the store as backup *${NEW}* of *lab* (same sha256): nothing new was imported.`);
    // The master was only read.
    expect(fingerprint(backupDir)).toEqual(before);
  });

  it('imports a snapshot whose tarball is missing, saying so, and refuses a damaged snapshot, a wrong path or member, keeping nothing', async () => {
    const m2 = t.lab.host('m2');
    const dir = join(m2.root, 'home/core/assets/backup');
    mkdirSync(dir, { recursive: true });
    const good = readFileSync(join(backupDir, `snapshot_${OLD}.db`));
    writeFileSync(join(dir, 'snapshot_2020-06-01_000000.db'), good);
    const lone = await importing(`m2 ${dir}/snapshot_2020-06-01_000000.db`);
    expect(lone).toContain(':inbox_tray: Backup imported for <@UALICE>: *2020-06-01_000000* of *lab* imported from m2');
    expect(lone).toContain(`:warning: no static_kuberesources_2020-06-01_000000.tar.gz beside the snapshot in m2:${dir}: the snapshot was imported alone`);

    const stored = () => readdirSync(join(t.config.inventory.backups.dir, 'lab')).sort();
    const kept = stored();
    // The faults: a snapshot with one byte flipped, and one cut in half (a copy that stopped early).
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    writeFileSync(join(dir, 'snapshot_2020-06-02_000000.db'), flipped);
    expect(await importing(`m2 ${dir}`)).toContain(
      `:x: Import of ${dir} from m2 for <@UALICE> refused: snapshot_2020-06-02_000000.db in m2:${dir} is not a whole etcd snapshot: its sha256 trailer does not match its contents (truncated or corrupted). Nothing was imported`,
    );
    writeFileSync(join(dir, 'snapshot_2020-06-03_000000.db'), good.subarray(0, Math.floor(good.length / 2)));
    expect(await importing(`m2 ${dir}/snapshot_2020-06-03_000000.db`)).toContain(`refused: snapshot_2020-06-03_000000.db in m2:${dir} is not a whole etcd snapshot: its sha256 trailer does not match`);

    expect(await importing(`m2 ${m2.root}/home/core/nothing-here`)).toContain(`refused: ${m2.root}/home/core/nothing-here does not exist on m2`);
    mkdirSync(join(m2.root, 'home/core/empty'), { recursive: true });
    expect(await importing(`m2 ${m2.root}/home/core/empty`)).toContain(`refused: no snapshot_<YYYY-MM-DD_HHMMSS>.db in m2:${m2.root}/home/core/empty. cluster-backup.sh writes`);
    expect(stored()).toEqual(kept);

    // Refused before anything is queued, with what to type.
    const bad = ackText((await t.command(`backup import m9 ${dir}`, { user: 'UALICE' })).body);
    expect(bad).toContain('"m9" is not a member of lab; its members: m1, m2, m3.');
    expect(bad).toContain('Usage: `/etcd backup [cluster] import <member> <directory | snapshot_<ts>.db path>`');
  });

  it('restores the whole cluster from the imported backup, naming its tarball in the plan', async () => {
    const apiManifest = stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kube-apiserver' }, spec: { containers: [{ name: 'kube-apiserver', command: ['sleep', '3600'] }] } });
    for (const h of t.lab.hosts) writeFileSync(join(h.manifestsDir, 'kube-apiserver.yaml'), apiManifest);
    await waitFor('kube-apiservers up', () => t.lab.hosts.every((h) => h.supervisor.pid('kube-apiserver.yaml') !== null), 10_000);
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/later/k${i}`, `v${i}`]);

    const { ts } = await planRun(t, `restore ${NEW}`, /^(Restore lab to backup|\/etcd restore.* refused)/);
    const plan = textOf(latest(t.slack, ts));
    expect(plan).toMatch(/^Restore lab to backup 2020-05-11_080543/);
    expect(plan).toContain(`static_kuberesources_${NEW}.tar.gz (static-pod-resources/etcd-pod-3, static-pod-resources/kube-apiserver-pod-7, static-pod-resources/kube-controller-manager-pod-5, static-pod-resources/kube-scheduler-pod-6) stays in the backup store and is not unpacked`);
    const header = await approveUntilEnded(t, ts, 'UBOB', 180_000);
    expect(header, `${textOf(latest(t.slack, ts))}\n${threadOf(t.slack, ts).join('\n')}`).toBe(`Restore lab to backup ${NEW}: DONE`);

    const members = await t.lab.memberList();
    expect(members.map((m) => `${m.name} ${m.status} ${m.learner ? 'learner' : 'voter'}`).sort()).toEqual(['m1 started voter', 'm2 started voter', 'm3 started voter']);
    for (const h of t.lab.hosts) {
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
      expect(Number(/"revision":(\d+)/.exec(stdout)![1])).toBe(revisionNew);
      const { stdout: keys } = await t.lab.etcdctl(['get', '/', '--prefix', '--keys-only', '--consistency=s'], [h.clientUrl]);
      const all = keys.split('\n').filter(Boolean);
      expect(all.filter((k) => k.startsWith('/ocp/k'))).toHaveLength(20);
      expect(all.filter((k) => k.startsWith('/ocp/old'))).toHaveLength(10);
      expect(all.filter((k) => k.startsWith('/later/'))).toHaveLength(0);
    }
    await waitFor('kube-apiservers back', () => t.lab.hosts.every((h) => h.supervisor.pid('kube-apiserver.yaml') !== null), 10_000);
  });
});
