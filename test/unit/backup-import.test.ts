import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { choosePair, importPathProblem, importSourceOf, stampOf, type ListedFile } from '../../src/backup/openshift-names.js';
import { TarTops } from '../../src/backup/tar-listing.js';
import { DirectoryBackupStore, PARTIAL_FILE, type BackupFacts } from '../../src/backup/store.js';
import { applyRetention } from '../../src/backup/take.js';
import { quote } from '../../src/ssh/shell.js';

const root = mkdtempSync(join(tmpdir(), 'medic-import-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const f = (name: string, bytes = 100): ListedFile => ({ name, bytes });

describe('OpenShift backup names', () => {
  it('reads the time cluster-backup.sh put in the name (date "+%F_%H%M%S", read as UTC), refusing impossible ones', () => {
    expect(stampOf('2020-05-11_080543')).toBe('2020-05-11T08:05:43.000Z');
    expect(stampOf('2024-02-29_235959')).toBe('2024-02-29T23:59:59.000Z');
    for (const bad of ['2023-02-29_120000', '2020-13-01_000000', '2020-05-11_250000', '2020-05-11_086000', '2020-05-11T080543', '20200511_080543']) expect(stampOf(bad)).toBeNull();
  });

  it('splits a path into the directory to list and the timestamp a named file asks for', () => {
    expect(importSourceOf('/home/core/assets/backup')).toEqual({ dir: '/home/core/assets/backup', ts: null });
    expect(importSourceOf('/home/core/assets/backup/')).toEqual({ dir: '/home/core/assets/backup', ts: null });
    expect(importSourceOf('/home/core/assets/backup/snapshot_2020-05-11_080543.db')).toEqual({ dir: '/home/core/assets/backup', ts: '2020-05-11_080543' });
    expect(importSourceOf('/b/static_kuberesources_2020-05-11_080543.tar.gz')).toEqual({ dir: '/b', ts: '2020-05-11_080543' });
    expect(importSourceOf('/b/snapshot_db_kuberesources_2020-01-02_030405.tar.gz')).toEqual({ combined: 'snapshot_db_kuberesources_2020-01-02_030405.tar.gz' });
    expect(importSourceOf('/')).toEqual({ dir: '/', ts: null });
  });

  it('refuses paths that are relative, use ~ or . segments, or carry characters no backup path needs', () => {
    expect(importPathProblem('/home/core/assets/backup')).toBeNull();
    expect(importPathProblem('/var/backups/etcd-2020.05_x+y@z:1,a=b%20/snapshot_2020-05-11_080543.db')).toBeNull();
    expect(importPathProblem('assets/backup')).toContain('not an absolute path (write it from /');
    expect(importPathProblem('~/assets/backup')).toContain('write the absolute path (nothing expands ~ on the host)');
    expect(importPathProblem('/home/core/../../etc')).toContain('without . or .. segments');
    expect(importPathProblem('/home/./core')).toContain('without . or .. segments');
    for (const bad of ['/x;reboot', '/x$(id)', '/x`id`', "/x'y", '/x|sh', '/x&amp;y', '/x\ny', '/x\0y', '/x y']) {
      expect(importPathProblem(bad), bad).toContain('has characters a backup path does not need');
    }
    expect(importPathProblem(`/${'a'.repeat(1100)}`)).toContain('longer than 1024');
  });

  it('and a path that got past validation is still quoted into the one command that reads it', () => {
    expect(quote("/x'; rm -rf /; echo '")).toBe(`'/x'\\''; rm -rf /; echo '\\'''`);
  });
});

describe('choosing the pair to import', () => {
  const dir = 'm1:/home/core/assets/backup';

  it('takes the newest snapshot by the time in its name and its tarball, naming the others', () => {
    const files = [f('static_kuberesources_2020-05-11_080543.tar.gz'), f('snapshot_2020-05-11_080543.db', 42), f('snapshot_2020-05-12_010000.db', 43), f('static_kuberesources_2020-05-12_010000.tar.gz'), f('snapshot_2019-12-31_235959.db')];
    const c = choosePair(files, null, dir);
    expect(c).toMatchObject({ ts: '2020-05-12_010000', stampedAt: '2020-05-12T01:00:00.000Z', snapshot: { name: 'snapshot_2020-05-12_010000.db', bytes: 43 }, resources: { name: 'static_kuberesources_2020-05-12_010000.tar.gz' } });
    expect(c.others).toEqual(['snapshot_2020-05-11_080543.db', 'snapshot_2019-12-31_235959.db']);
  });

  it('takes the one a named file asks for, and says what the directory holds when it is not there', () => {
    const files = [f('snapshot_2020-05-11_080543.db'), f('snapshot_2020-05-12_010000.db'), f('snapshot_2020-05-13_000000.db.part')];
    expect(choosePair(files, '2020-05-11_080543', dir)).toMatchObject({ ts: '2020-05-11_080543', resources: null, others: ['snapshot_2020-05-12_010000.db'], unfinished: ['snapshot_2020-05-13_000000.db.part'] });
    expect(() => choosePair(files, '2020-05-10_000000', dir)).toThrow('there is no snapshot_2020-05-10_000000.db in m1:/home/core/assets/backup; it holds snapshot_2020-05-12_010000.db, snapshot_2020-05-11_080543.db');
    expect(() => choosePair(files, '2020-05-13_000000', dir)).toThrow('snapshot_2020-05-13_000000.db.part is there: cluster-backup.sh is still writing it, or died while it did');
  });

  it('imports a snapshot whose tarball is missing (resources null), and never a tarball alone', () => {
    expect(choosePair([f('snapshot_2020-05-11_080543.db'), f('static_kuberesources_2020-05-10_000000.tar.gz')], null, dir).resources).toBeNull();
    expect(() => choosePair([f('static_kuberesources_2020-05-10_000000.tar.gz')], null, dir)).toThrow(
      'no snapshot_<YYYY-MM-DD_HHMMSS>.db in m1:/home/core/assets/backup. cluster-backup.sh writes snapshot_<YYYY-MM-DD_HHMMSS>.db and static_kuberesources_<same>.tar.gz into the directory it was given',
    );
  });

  it('says why an empty-handed directory has nothing: a 4.3.0/4.3.1 single file, or a snapshot still being written', () => {
    expect(() => choosePair([f('snapshot_db_kuberesources_2020-01-02_030405.tar.gz')], null, dir)).toThrow("OpenShift 4.3.0/4.3.1's single-file backup");
    expect(() => choosePair([f('snapshot_2020-05-11_080543.db.part')], null, dir)).toThrow('still writing');
    // Names that only look like it are not candidates.
    expect(() => choosePair([f('snapshot_2020-13-11_080543.db'), f('snapshot_latest.db'), f('snapshot_2020-05-11_080543.db.bak')], null, dir)).toThrow('no snapshot_');
  });
});

describe('the static_kuberesources tarball, read as a stream', () => {
  // A tree laid out as cluster-backup.sh archives it: relative to /etc/kubernetes.
  const tree = join(root, 'etc-kubernetes');
  for (const d of ['kube-apiserver-pod-7/secrets/x', 'kube-scheduler-pod-5/configmaps/y', 'etcd-pod-3']) mkdirSync(join(tree, 'static-pod-resources', d), { recursive: true });
  writeFileSync(join(tree, 'static-pod-resources/kube-apiserver-pod-7/kube-apiserver-pod.yaml'), 'a'.repeat(1500));
  writeFileSync(join(tree, 'static-pod-resources/etcd-pod-3/etcd-pod.yaml'), 'b');
  const long = `static-pod-resources/kube-scheduler-pod-5/configmaps/y/${'n'.repeat(150)}.yaml`;
  writeFileSync(join(tree, long), 'c');
  const tgz = join(root, 'res.tar.gz');
  execFileSync('tar', ['-cpzf', tgz, '-C', tree, 'static-pod-resources/kube-apiserver-pod-7', 'static-pod-resources/kube-scheduler-pod-5', 'static-pod-resources/etcd-pod-3']);

  const list = async (bytes: Buffer) => {
    const { createGunzip } = await import('node:zlib');
    const t = new TarTops();
    await pipeline(Readable.from([bytes]), createGunzip(), t);
    t.check();
    return [...t.tops].sort();
  };

  it('lists the revision directories it holds (long GNU names included)', async () => {
    expect(await list(readFileSync(tgz))).toEqual(['static-pod-resources/etcd-pod-3', 'static-pod-resources/kube-apiserver-pod-7', 'static-pod-resources/kube-scheduler-pod-5']);
  });

  it('fails on a truncated or damaged archive, and on something that is not a tar', async () => {
    const whole = readFileSync(tgz);
    await expect(list(whole.subarray(0, Math.floor(whole.length / 2)))).rejects.toThrow();
    const bad = Buffer.from(whole);
    bad[Math.floor(bad.length / 2)]! ^= 0xff;
    await expect(list(bad)).rejects.toThrow();
    const { gzipSync } = await import('node:zlib');
    await expect(list(gzipSync(Buffer.from('x'.repeat(2048))))).rejects.toThrow('not a tar archive');
    await expect(list(gzipSync(Buffer.alloc(1024)))).rejects.toThrow('the archive holds no files');
  });
});

describe('the store and imported backups', () => {
  const imported = (id: string, takenAt: string): BackupFacts => ({
    id,
    cluster: 'prod',
    takenAt,
    takenBy: 'UALICE',
    fromMember: 'm1',
    snapshotFile: `snapshot_${id}.db`,
    resourcesFile: null,
    bytes: 1,
    sha256: 'x',
    revision: 1,
    totalKeys: 1,
    hash: 1,
    source: 'imported',
  });

  it('retention neither counts nor removes an imported backup', async () => {
    const store = new DirectoryBackupStore(join(root, 'ret'));
    const taken = (id: string, takenAt: string): BackupFacts => ({ ...imported(id, takenAt), takenBy: 'schedule', source: undefined });
    for (const b of [imported('2020-05-11_080543', '2020-05-11T08:05:43.000Z'), taken('2026-11-20_000000', '2026-11-20T00:00:00.000Z'), taken('2026-11-21_000000', '2026-11-21T00:00:00.000Z'), imported('2026-11-22_000000', '2026-11-22T00:00:00.000Z')]) {
      writeFileSync(store.reserve('prod', b.id).snapshot, 'x');
      await store.commit(b);
    }
    const r = await applyRetention(store, 'prod', 1);
    expect(r).toEqual({ removed: ['2026-11-20_000000'], kept: [] });
    expect((await store.list('prod')).map((b) => b.id)).toEqual(['2026-11-22_000000', '2026-11-21_000000', '2020-05-11_080543']);
  });

  it('a tarball cut off mid-import counts as a partial file for the sweep', () => {
    expect(PARTIAL_FILE.test('static_kuberesources_2020-05-11_080543.tar.gz.partial')).toBe(true);
    expect(PARTIAL_FILE.test('snapshot_2020-05-11_080543.db.partial')).toBe(true);
    expect(PARTIAL_FILE.test('static_kuberesources_2020-05-11_080543.tar.gz')).toBe(false);
  });
});
