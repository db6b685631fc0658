import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, unlinkSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupId } from '../../src/backup/store.js';
import { openEndpoint } from '../../src/etcd/pool.js';
import { sshExec } from '../../src/ssh/exec.js';
import { sshTargetOf } from '../../src/worker/ssh-target.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { textOf, threadOf, waitForRunStatus } from '../support/slack-view.js';
import { waitForStatusAnswer } from '../../src/lab/slack-view.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('backups under faults: a full disk, a frozen member, a cancel mid-snapshot', () => {
  let t: MedicLab;
  let dir: string;

  beforeAll(async () => {
    t = await startMedicLab('backup-faults', 65);
    dir = join(t.config.inventory.backups.dir, 'lab');
  });
  afterAll(async () => {
    await t?.stop();
  });

  const backupAnswer = async (since: number, timeoutMs = 60_000) =>
    textOf(await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /Backup (taken|of lab)/.test(String(r.body.text)), timeoutMs, since));

  it('a snapshot written to a full disk fails the backup with a clear message, leaves no partial file, and the worker lives on', async () => {
    // The fault: every snapshot path the next two minutes could reserve is /dev/full (writes fail with ENOSPC).
    // The directory is also left 0755, as an older version or an operator may have made it.
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const now = Date.now();
    const traps: string[] = [];
    for (let s = -5; s < 120; s++) {
      const p = join(dir, `snapshot_${backupId(new Date(now + s * 1000))}.db.partial`);
      symlinkSync('/dev/full', p);
      traps.push(p);
    }
    try {
      const since = t.slack.lastSeq;
      await t.command('backup');
      const text = await backupAnswer(since);
      expect(text).toMatch(/^:x: Backup of lab for <@UALICE> failed: snapshot from m\d failed after [\d.]+ \w*B: no space left on the device holding \S+snapshot_\S+\.db\.partial; the partial file was removed\. Nothing was kept\. Free space where `backups.dir` lives/);
      // The partial file (here the trap itself) is gone; nothing else was written or committed.
      const used = traps.filter((p) => !existsSync(p) && !isLink(p));
      expect(used.length).toBe(1);
      expect(readdirSync(dir).filter((f) => !f.endsWith('.db.partial'))).toEqual([]);

      // The same worker process answers the next command.
      const s2 = t.slack.lastSeq;
      await t.command('status');
      const { final: status } = await waitForStatusAnswer(t.slack, 'lab', 30_000, s2);
      expect(textOf(status)).toContain('HEALTHY');
    } finally {
      for (const p of traps) if (isLink(p)) unlinkSync(p);
    }
  });

  it('an upload over SSH whose source fails, or whose remote end stops reading, fails that command only', async () => {
    const target = sshTargetOf(t.config.inventory.clusters[0]!.members[0]!);
    // The fault: the file to upload cannot be read (it vanished).
    await expect(sshExec(target, 'cat > /dev/null', { input: createReadStream(join(t.lab.opts.root, 'no-such-snapshot.db')) })).rejects.toThrow(/sending input failed: ENOENT/);
    // The fault: the remote command exits after 10 bytes of a 64 MB upload (the pipe breaks under the sender).
    const big = join(t.lab.opts.root, 'upload.bin');
    writeFileSync(big, Buffer.alloc(64 * 1024 * 1024, 1));
    const outcome = await sshExec(target, 'head -c 10 > /dev/null', { input: createReadStream(big) }).then(
      (r) => `exit ${r.code}`,
      (e: Error) => e.message,
    );
    expect(outcome).toMatch(/^exit 0$|sending input failed/);
    // This process (bot and worker) is still here and answers.
    expect((await sshExec(target, 'echo alive')).stdout.trim()).toBe('alive');
  });

  it('writes backup files 0600 in a 0700 directory', async () => {
    const since = t.slack.lastSeq;
    await t.command('backup');
    const text = await backupAnswer(since);
    const id = /\*(\d{4}-\d{2}-\d{2}_\d{6}(?:-\d+)?)\* of \*lab\*/.exec(text)?.[1];
    expect(id, text).toBeTruthy();
    expect(mode(dir)).toBe(0o700);
    for (const f of [`snapshot_${id}.db`, `static_kuberesources_${id}.tar.gz`, `backup_${id}.json`]) expect([f, mode(join(dir, f))]).toEqual([f, 0o600]);
  });

  describe('with a database big enough that the snapshot stream takes a while', () => {
    beforeAll(async () => {
      // About 100 MB of values, so that freezing etcd as the stream starts leaves it mid-way.
      const client = openEndpoint(t.config.inventory.clusters[0]!, t.lab.hosts[0]!.clientUrl, 30_000);
      const value = Buffer.alloc(1024 * 1024, 0x61);
      for (let i = 0; i < 100; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => client.put(`/big/${i + j}`).value(value)));
      client.close();
    }, 120_000);

    /** The fault: as soon as a snapshot file starts, every etcd process is frozen (SIGSTOP): TCP stays open, nothing is sent. */
    function freezeWhenSnapshotStarts(): { frozen: Promise<number>; thaw(): Promise<void> } {
      let pids: number[] = [];
      let w: ReturnType<typeof watch>;
      const frozen = new Promise<number>((resolve) => {
        w = watch(dir, (_ev, name) => {
          if (pids.length || !String(name).endsWith('.db.partial')) return;
          pids = t.lab.hosts.map((h) => h.supervisor.pid()!).filter(Boolean);
          for (const pid of pids) process.kill(pid, 'SIGSTOP');
          resolve(Date.now());
        });
      });
      return {
        frozen,
        async thaw() {
          w.close();
          for (const pid of pids) process.kill(pid, 'SIGCONT');
          await t.lab.waitHealthy(60_000);
        },
      };
    }

    it('a frozen leader fails the snapshot within the watchdog bound instead of hanging it', async () => {
      const fault = freezeWhenSnapshotStarts();
      try {
        const since = t.slack.lastSeq;
        await t.command('backup');
        const frozenAt = await fault.frozen;
        const text = await backupAnswer(since, 45_000);
        const took = Date.now() - frozenAt;
        expect(text).toMatch(/^:x: Backup of lab for <@UALICE> failed: snapshot from m\d failed after [\d.]+ \w*B: no snapshot data from m\d for 10 s after [\d.]+ \w*B: its etcd looks frozen/);
        expect(took).toBeLessThan(20_000);
        expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
      } finally {
        await fault.thaw();
      }
    });

    it('/etcd cancel during a slow snapshot step cancels the run within seconds, and the thread says what was done and not', async () => {
      const fault = freezeWhenSnapshotStarts();
      try {
        const since = t.slack.lastSeq;
        await t.command('replace m3 --force');
        const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
        const runId = /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]!;
        await fault.frozen;
        const asked = Date.now();
        await t.command(`cancel ${runId}`);
        const text = await waitForRunStatus(t.slack, plan.ts!, 'CANCELLED', 30_000);
        // The watchdog would fail the step after 10 s: the cancel got there first.
        expect(Date.now() - asked).toBeLessThan(8000);
        const thread = threadOf(t.slack, plan.ts!).join('\n');
        expect(thread).toMatch(/Step 1 \(.+\) was interrupted by the stop request, not completed: snapshot stopped after [\d.]+ \w*B: cancelled by <@UALICE>/);
        expect(thread).toMatch(/Run `r-[0-9a-f]{8}` cancelled by <@UALICE>\. Done: nothing\. Not done: 1\. /);
        expect(text).toContain('CANCELLED');
        expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
      } finally {
        await fault.thaw();
      }
      // The cluster lock is free again: another run may start.
      const s2 = t.slack.lastSeq;
      await t.command('replace m3 --force');
      const again = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab|refused/.test(String(r.body.text)), 30_000, s2);
      expect(String(again.body.text)).toMatch(/^Replace m3 in lab/);
      await t.command(`cancel ${/run (r-[0-9a-f]{8})/.exec(String(again.body.text))![1]}`);
      await waitForRunStatus(t.slack, again.ts!, 'CANCELLED', 60_000);
    });
  });
});

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
