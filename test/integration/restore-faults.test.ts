import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { waitFor } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, latest, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };

describe('a restore whose host tool fails', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('restore-faults', 50, { roles: ROLES });
  });
  afterAll(async () => {
    await t?.stop();
  });

  async function approve(ts: string, step: number): Promise<void> {
    const b = await waitForGate(t.slack, ts, step);
    const c = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: b.blockId, value: b.approve });
    expect(await answerAt(t.slack, c.responseUrl)).toContain(`Approved step ${step + 1}`);
  }

  it('fails the step with etcdctl’s message and never starts etcd on the partial data dir', { timeout: 300_000 }, async () => {
    const apiManifest = stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kube-apiserver' }, spec: { containers: [{ name: 'kube-apiserver', command: ['sleep', '3600'] }] } });
    for (const h of t.lab.hosts) writeFileSync(join(h.manifestsDir, 'kube-apiserver.yaml'), apiManifest);
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/rf/k${i}`, `v${i}`]);
    const since = t.slack.lastSeq;
    await t.command('backup', { user: 'UALICE' });
    const backupMsg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 30_000, since);
    const id = /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*lab\*/.exec(textOf(backupMsg))![1]!;

    // The majority is lost: m2 and m3 die (SIGKILL) and their data dirs are gone.
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost`);
    }
    // The fault, on m1 only: its etcdctl fails half-way through `snapshot restore` (a full disk),
    // leaving a partial data dir, as a real one does; every other etcdctl command works.
    const m1 = t.lab.host('m1');
    writeFileSync(
      join(m1.binDir, 'etcdctl'),
      `#!/bin/bash
if [ "$1 $2" = "snapshot restore" ]; then
  dd=; for a in "$@"; do [ "$prev" = --data-dir ] && dd=$a; prev=$a; done
  mkdir -p "$dd/member/snap" && head -c 4096 /dev/zero > "$dd/member/snap/db"
  echo "Error: write $dd/member/snap/db: no space left on device" >&2
  exit 1
fi
exec /usr/bin/etcdctl "$@"
`,
    );
    chmodSync(join(m1.binDir, 'etcdctl'), 0o755);

    const before = t.slack.lastSeq;
    await t.command(`restore-quorum --snapshot ${id}`, { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Restore quorum of lab/.test(String(r.body.text)), 60_000, before);
    const ts = plan.ts!;
    const kinds = textOf(latest(t.slack, ts));
    expect(kinds).toContain('Stop kube-apiserver on every reachable master');
    await approve(ts, 1); // stop kube-apiserver
    await approve(ts, 2); // fence m2, m3
    await approve(ts, 3); // restore onto m1
    const failed = await waitForRunStatus(t.slack, ts, 'FAILED', 240_000);
    expect(failed).toBeTruthy();

    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toContain('kube-apiserver stopped on m1, m2, m3');
    expect(thread).toMatch(/Step 4 \(Restore backup \S+ onto m1 as a one-member cluster\) failed: .*etcdctl snapshot restore failed \(exit 1\); etcd was not started/);
    expect(thread).toContain('no space left on device');
    expect(thread).toMatch(/Done: 1\. Verify backup \S+; 2\. Stop kube-apiserver on every reachable master; 3\. Fence m2, m3\. Not done: 4\. Restore backup/);

    // etcd was never started on the partial data dir: no manifest in the kubelet's directory, no process.
    expect(existsSync(join(m1.manifestsDir, 'etcd.yaml'))).toBe(false);
    expect(m1.supervisor.pid()).toBeNull();
    expect(readFileSync(join(m1.dataDir, 'member/snap/db')).every((b) => b === 0)).toBe(true);
    const aside = readdirSync(join(m1.root, 'etc/kubernetes/etcd-medic-aside'));
    expect(aside.filter((f) => f.startsWith('restored-'))).toEqual([]);
    // The member's own data is kept aside, whole.
    expect(readdirSync(join(m1.root, 'var/lib')).some((f) => /^etcd\.before-r-[0-9a-f]{8}$/.test(f))).toBe(true);
    await waitFor('no etcd on m1', async () => m1.supervisor.pid() === null, 2000);
  });
});
