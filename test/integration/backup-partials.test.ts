import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupId, DirectoryBackupStore } from '../../src/backup/store.js';
import { createLogger } from '../../src/log.js';
import { startMedic } from '../../src/runtime.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { textOf } from '../support/slack-view.js';

describe('partial snapshot files left in the backup store by backups that were cut off', () => {
  let t: MedicLab;
  let dir: string;

  beforeAll(async () => {
    t = await startMedicLab('backup-partials', 83, { roles: { operate: ['UALICE'] } });
    dir = join(t.config.inventory.backups.dir, 'lab');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** The fault: a backup killed mid-stream left `snapshot_<id>.db.partial`, last written `ageMs` ago. */
  function leftBehind(ageMs: number, bytes = 4096): string {
    const at = new Date(Date.now() - ageMs);
    const file = `snapshot_${backupId(at)}.db.partial`;
    writeFileSync(join(dir, file), Buffer.alloc(bytes, 1), { mode: 0o600 });
    utimesSync(join(dir, file), at, at);
    return file;
  }

  it('a backup removes those left long ago, says so in the channel, and leaves one another worker may be writing', async () => {
    const stale = leftBehind(3 * 3600_000);
    const live = leftBehind(2000);
    const since = t.slack.lastSeq;
    await t.command('backup', { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 30_000, since);
    const text = textOf(msg);
    expect(text).toMatch(new RegExp(`Removed \`${stale.replace(/\./g, '\\.')}\` \\(4\\.0 KB, last written \\S+\\): left by a backup that was cut off while streaming; it was never a backup\\.`));
    expect(text).not.toContain(live);
    expect(existsSync(join(dir, stale))).toBe(false);
    expect(existsSync(join(dir, live))).toBe(true);
    // The new backup is whole and is the only one in the store.
    expect((await new DirectoryBackupStore(t.config.inventory.backups.dir).list('lab')).map((f) => f.snapshotFile)).toEqual([
      /\*(\S+)\* of \*lab\*/.exec(text)![1]!.replace(/^/, 'snapshot_') + '.db',
    ]);
    expect(t.logs.some((l) => l.includes('removed a partial snapshot left by a backup that was cut off') && l.includes(stale))).toBe(true);
  });

  it('a worker that starts removes those left long ago, with a log line', async () => {
    const stale = leftBehind(2 * 3600_000, 10);
    const live = leftBehind(500);
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    });
    // A second worker joins the same Redis and the same backup store.
    const second = await startMedic(t.config, createLogger('info', sink), { bot: false, worker: true });
    try {
      expect(existsSync(join(dir, stale))).toBe(false);
      expect(existsSync(join(dir, live))).toBe(true);
      const line = JSON.parse(logs.find((l) => l.includes('removed a partial snapshot'))!) as Record<string, unknown>;
      expect(line).toMatchObject({ cluster: 'lab', file: stale, bytes: 10, msg: 'removed a partial snapshot left by a backup that was cut off; it was never a backup' });
    } finally {
      await second.stop();
    }
  });
});
