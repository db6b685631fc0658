import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryBackupStore, type BackupFacts } from '../../src/backup/store.js';
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
