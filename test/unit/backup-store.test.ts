import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryBackupStore, writingPartial, type BackupFacts } from '../../src/backup/store.js';
import { applyRetention } from '../../src/backup/take.js';

const root = mkdtempSync(join(tmpdir(), 'medic-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;

function facts(id: string, takenAt: string): BackupFacts {
  return { id, cluster: 'prod', takenAt, takenBy: 'schedule', fromMember: 'm1', snapshotFile: `snapshot_${id}.db`, resourcesFile: null, bytes: 1, sha256: 'x', revision: 1, totalKeys: 1, hash: 1 };
}

async function fill(store: DirectoryBackupStore, ids: string[]): Promise<void> {
  for (const [i, id] of ids.entries()) {
    writeFileSync(store.reserve('prod', id).snapshot, 'x');
    await store.commit(facts(id, `2026-11-2${i}T00:00:00.000Z`));
  }
}

describe('the backup directory store', () => {
  it('keeps its directory 0700 and the facts 0600, even over a directory left 0755 and a loose umask', async () => {
    const dir = join(root, 'modes');
    mkdirSync(join(dir, 'prod'), { recursive: true, mode: 0o755 });
    const old = process.umask(0o000);
    try {
      const store = new DirectoryBackupStore(dir);
      const paths = store.reserve('prod', '2026-11-23_031500');
      expect(mode(join(dir, 'prod'))).toBe(0o700);
      await store.commit(facts('2026-11-23_031500', '2026-11-23T03:15:00.000Z'));
      expect(mode(join(dir, 'prod', 'backup_2026-11-23_031500.json'))).toBe(0o600);
      expect(paths.snapshot).toBe(join(dir, 'prod', 'snapshot_2026-11-23_031500.db'));
    } finally {
      process.umask(old);
    }
  });
});

describe('retention', () => {
  it('keeps the newest N and every backup an unfinished run uses, saying why', async () => {
    const store = new DirectoryBackupStore(join(root, 'ret'), { inUse: async () => new Map([['2026-11-20_000000', 'run `r-1` (Restore prod) uses it']]) });
    await fill(store, ['2026-11-20_000000', '2026-11-21_000000', '2026-11-22_000000']);
    const r = await applyRetention(store, 'prod', 1);
    expect(r).toEqual({ removed: ['2026-11-21_000000'], kept: [{ id: '2026-11-20_000000', why: 'run `r-1` (Restore prod) uses it' }] });
    expect((await store.list('prod')).map((f) => f.id)).toEqual(['2026-11-22_000000', '2026-11-20_000000']);
  });

  it('prunes nothing when it cannot tell which backups runs use', async () => {
    const store = new DirectoryBackupStore(join(root, 'ret-down'), {
      inUse: async () => {
        throw new Error('Redis is down');
      },
    });
    await fill(store, ['2026-11-20_000000', '2026-11-21_000000']);
    const r = await applyRetention(store, 'prod', 1);
    expect(r.removed).toEqual([]);
    expect(r.kept).toEqual([{ id: '2026-11-20_000000', why: 'could not check which runs use it (Redis is down), so nothing was pruned' }]);
    expect((await store.list('prod')).length).toBe(2);
  });
});

describe('partial snapshot files left by backups that were cut off', () => {
  it('removes those last written longer ago than the bound, and never one being written or a backup', async () => {
    const dir = join(root, 'partials');
    const store = new DirectoryBackupStore(dir);
    await fill(store, ['2026-11-20_000000']);
    const d = join(dir, 'prod');
    const now = new Date('2026-11-27T12:00:00.000Z');
    const twoHoursAgo = new Date(now.getTime() - 2 * 3600_000);
    const aged = (name: string, at: Date, bytes = 10) => {
      writeFileSync(join(d, name), 'x'.repeat(bytes));
      utimesSync(join(d, name), at, at);
      return join(d, name);
    };
    // The fault: a worker was killed mid-stream two hours ago and left its partial file.
    aged('snapshot_2026-11-27_100000.db.partial', twoHoursAgo, 1234);
    // Another worker sharing the store streams one now: written a second ago.
    aged('snapshot_2026-11-27_115959.db.partial', new Date(now.getTime() - 1000));
    // This process streams one whose file is old (a slow start): its own in-flight files are never swept.
    const mine = writingPartial(aged('snapshot_2026-11-27_090000.db.partial', twoHoursAgo));
    // Not a snapshot stream's file, however old: not this sweep's business.
    aged('notes.partial', twoHoursAgo);
    aged('snapshot_2026-11-20_000000.db', twoHoursAgo);

    expect(await store.sweepPartials('prod', 3600_000, now)).toEqual([{ cluster: 'prod', file: 'snapshot_2026-11-27_100000.db.partial', bytes: 1234, modifiedAt: twoHoursAgo.toISOString() }]);
    expect(readdirSync(d).sort()).toEqual([
      'backup_2026-11-20_000000.json',
      'notes.partial',
      'snapshot_2026-11-20_000000.db',
      'snapshot_2026-11-27_090000.db.partial',
      'snapshot_2026-11-27_115959.db.partial',
    ]);
    expect((await store.list('prod')).map((f) => f.id)).toEqual(['2026-11-20_000000']);

    // Once this process stops writing it (it died mid-way without cleaning up), it is swept like any other.
    mine.done();
    expect((await store.sweepPartials('prod', 3600_000, now)).map((p) => p.file)).toEqual(['snapshot_2026-11-27_090000.db.partial']);
    expect(await store.sweepPartials('no-such-cluster', 3600_000, now)).toEqual([]);
  });
});
