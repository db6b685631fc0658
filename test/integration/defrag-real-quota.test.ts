import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEndpoint } from '../../src/etcd/pool.js';
import { waitFor } from '../../src/lab/proc.js';
import { platformOf } from '../../src/platform/index.js';
import type { MedicLab } from '../support/medic-lab.js';
import { startMedicLab } from '../support/medic-lab.js';
import { answerAt, latest, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const LAB_SUBNET = 172;
const ROLES = { read: ['*'], operate: ['*'], destroy: ['UALICE'], approve: ['UBOB'] };
// What the inventory believes: 8 GiB, a common production setting.
const INVENTORY_QUOTA = 8 * 1024 ** 3;
// What the members are restarted with: less than the live data they hold.
const REAL_QUOTA = 2 * 1024 * 1024;

describe('/etcd defrag disarms NOSPACE against the quota each member runs with, not the inventory', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('defrag-real-quota', LAB_SUBNET, {
      roles: ROLES,
      editInventory: (inv) => {
        inv.clusters[0].etcd.quotaBytes = INVENTORY_QUOTA;
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** Each master's manifest rewritten with `--quota-backend-bytes`, one at a time (the kubelet restarts etcd on it), as an operator rolls a flag. */
  async function rollQuota(bytes: number): Promise<void> {
    const cluster = t.config.inventory.clusters[0]!;
    const platform = platformOf(cluster);
    for (const h of t.lab.hosts) {
      const pidBefore = h.supervisor.pid();
      const file = join(h.manifestsDir, 'etcd.yaml');
      writeFileSync(file, platform.withFlags(readFileSync(file, 'utf8'), { 'quota-backend-bytes': String(bytes) }));
      await waitFor(`${h.name}'s etcd restarted on its new manifest`, async () => h.supervisor.pid() !== null && h.supervisor.pid() !== pidBefore, 20_000);
      await t.lab.waitHealthy();
    }
  }

  it('a member restarted with a quota below its live data: the disarm is refused, naming the quota the member runs with, and the alarm stays', async () => {
    // 3 MB of live data (30 distinct keys of 100 KB): history is not what fills it, so no compaction or defragment frees it.
    const cluster = t.config.inventory.clusters[0]!;
    const client = openEndpoint(cluster, t.lab.endpoints[0]!, 10_000);
    try {
      const value = 'z'.repeat(100_000);
      for (let i = 0; i < 30; i++) await client.put(`/live/k${i}`).value(value);
    } finally {
      client.close();
    }
    // The fault: the members are restarted with a quota of 2 MB, while the inventory still says 8 GB.
    await rollQuota(REAL_QUOTA);
    // What an SRE sees: the next write is refused and NOSPACE is raised.
    const refused = await t.lab.etcdctl(['put', '/after', 'x'], undefined, true);
    expect(refused.stderr).toContain('etcdserver: mvcc: database space exceeded');
    expect((await t.lab.etcdctl(['alarm', 'list'])).stdout).toContain('alarm:NOSPACE');

    const since = t.slack.lastSeq;
    await t.command('defrag', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Compact and defragment lab|\/etcd defrag.* refused)/.test(String(r.body.text)), 30_000, since);
    expect(String(plan.body.text)).toMatch(/^Compact and defragment lab/);
    const ts = plan.ts!;
    expect(textOf(latest(t.slack, ts))).toContain('the quota it runs with');
    const gate = await waitForGate(t.slack, ts, 0);
    expect(await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: gate.blockId, value: gate.approve })).responseUrl)).toContain('Approved step 1');
    await waitForRunStatus(t.slack, ts, 'FAILED');

    const thread = threadOf(t.slack, ts).join('\n');
    // Compaction and defragments ran; the databases are still over the quota the members run with.
    for (const i of [2, 3, 4]) expect(thread).toMatch(new RegExp(`Step ${i}: Defragment m\\d[^:]*: defragmented m\\d`));
    const refusal = thread.split('\n').find((l) => l.startsWith(':x: Step 5 (Disarm the NOSPACE alarm) failed:'));
    expect(refusal, thread).toBeDefined();
    for (const m of ['m1', 'm2', 'm3']) expect(refusal).toMatch(new RegExp(`${m} [0-9.]+ MB \\([0-9.]+ MB in use\\) is still over its quota of 2\\.0 MB, as ${m} runs with`));
    expect(refusal).toContain('the alarm was left raised');
    expect(thread).not.toMatch(/disarmed NOSPACE/);
    // etcd itself: the alarm is still raised and writes are still refused, as the message says.
    expect((await t.lab.etcdctl(['alarm', 'list'])).stdout).toContain('alarm:NOSPACE');
    expect((await t.lab.etcdctl(['put', '/after', 'x'], undefined, true)).stderr).toContain('database space exceeded');
  });

  it('once the members run with a quota above their data again, the same runbook disarms the alarm and says which quota it held each member to', async () => {
    await rollQuota(64 * 1024 * 1024);
    const since = t.slack.lastSeq;
    await t.command('defrag', { user: 'UALICE' });
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Compact and defragment lab|\/etcd defrag.* refused)/.test(String(r.body.text)), 30_000, since);
    expect(String(plan.body.text)).toMatch(/^Compact and defragment lab/);
    const ts = plan.ts!;
    const gate = await waitForGate(t.slack, ts, 0);
    expect(await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: gate.blockId, value: gate.approve })).responseUrl)).toContain('Approved step 1');
    await waitForRunStatus(t.slack, ts, 'DONE');
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/Step 5: Disarm the NOSPACE alarm: disarmed NOSPACE on m\d/);
    for (const m of ['m1', 'm2', 'm3']) expect(thread).toContain(`64.0 MB, as ${m} runs with`);
    // The inventory's figure is wrong: the step says so, so that /etcd status warns in time.
    expect(thread).toContain('etcd.quotaBytes in the inventory says 8.0 GB, but m1 runs with 64.0 MB');
    expect((await t.lab.etcdctl(['alarm', 'list'])).stdout.trim()).toBe('');
    expect((await t.lab.etcdctl(['put', '/after', 'x'])).stdout).toContain('OK');
  });
});
