import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import { connectRedis } from '../../src/queue/redis.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf, threadOf, waitForGate, waitForRunStatus, type Buttons } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };

/** Every timeline entry of the channel's latest incident, as text. */
async function timeline(t: MedicLab): Promise<string> {
  const redis = connectRedis(t.config.settings.redisUrl);
  try {
    const store = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
    const inc = await store.latest('CINCIDENT');
    return inc ? (await store.entries(inc.id)).map((e) => `${e.kind}: ${e.text}`).join('\n') : '';
  } finally {
    redis.disconnect();
  }
}

async function planReplace(t: MedicLab, member: string): Promise<{ ts: string; runId: string }> {
  const since = t.slack.lastSeq;
  await t.command(`replace ${member}`, { user: 'UALICE' });
  const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace \S+ in lab/.test(String(r.body.text)), 30_000, since);
  return { ts: plan.ts!, runId: /run (r-[0-9a-f]{8})/.exec(String(plan.body.text))![1]! };
}

async function approve(t: MedicLab, ts: string, b: Buttons): Promise<void> {
  const c = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: b.blockId, value: b.approve });
  expect(await answerAt(t.slack, c.responseUrl)).toContain('Approved step');
}

/** m3 is still in the member list under its old ID, and its host still has its manifest and data dir where they were. */
async function m3Untouched(t: MedicLab, id: string): Promise<void> {
  expect((await t.lab.memberList()).map((m) => m.id)).toContain(id);
  const h = t.lab.host('m3');
  expect(existsSync(join(h.manifestsDir, 'etcd.yaml'))).toBe(true);
  expect(existsSync(join(h.dataDir, 'member/snap/db'))).toBe(true);
  expect(readdirSync(dirname(h.dataDir)).filter((f) => f.includes('.before-r-'))).toEqual([]);
}

describe('a replace whose host changes its SSH host key after planning', () => {
  let t: MedicLab;
  beforeAll(async () => {
    t = await startMedicLab('readiness-hostkey', 55, { roles: ROLES });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('never reaches member remove: the step waits again with the reason, m3 stays a member, nothing runs on m3', async () => {
    await t.lab.corruptMember('m3');
    const m3 = (await t.lab.memberList()).find((m) => m.name === 'm3')!.id;
    const pinned = t.lab.host('m3').ssh.fingerprint;
    const { ts, runId } = await planReplace(t, 'm3');
    const gate = await waitForGate(t.slack, ts, 1);

    // The fault: between the plan and the approval of member remove, m3 comes back with another host key.
    await t.lab.restartSshd('m3', { newHostKey: true });
    const seen = t.lab.host('m3').ssh.fingerprint;
    expect(seen).not.toBe(pinned);
    await approve(t, ts, gate);

    await waitForGate(t.slack, ts, 1, gate.round + 1);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toContain(`Step 2 did not run: a host this run needs is not ready.\nm3 (127.0.55.3): host key changed: the host shows ${seen}, the inventory pins ${pinned}.`);
    expect(thread).toContain('Nothing was done for step 2. Done: 1. Take and verify a snapshot. Not done: 2. Remove m3 from the member list;');
    expect(thread).not.toContain('Step 2: Remove m3');
    await m3Untouched(t, m3);
    expect(await timeline(t)).toContain(`m3 (127.0.55.3): host key changed: the host shows ${seen}`);

    // Cancelled there, the run ends with m3 still a member.
    await t.command(`cancel ${runId}`, { user: 'UALICE' });
    const ended = await waitForRunStatus(t.slack, ts, 'CANCELLED', 30_000);
    expect(ended).not.toContain(':white_check_mark: *2.');
    await m3Untouched(t, m3);
  });
});

describe('a replace whose host stops answering SSH after planning', () => {
  let t: MedicLab;
  let silent: Server | undefined;
  beforeAll(async () => {
    t = await startMedicLab('readiness-hung', 56, { roles: ROLES });
  });
  afterAll(async () => {
    silent?.close();
    await t?.stop();
  });

  it('holds member remove with the reason while the host hangs, and goes on once the host is back and approved again', async () => {
    await t.lab.corruptMember('m3');
    const m3 = (await t.lab.memberList()).find((m) => m.name === 'm3')!.id;
    const { ts } = await planReplace(t, 'm3');
    const gate = await waitForGate(t.slack, ts, 1);

    // The fault: m3's sshd is gone and its port accepts connections but never answers (a hung host).
    await t.lab.stopSshd('m3');
    const hung = new Set<Socket>();
    silent = createServer((s) => hung.add(s)).listen(2222, '127.0.56.3');
    await approve(t, ts, gate);

    const again = await waitForGate(t.slack, ts, 1, gate.round + 1, 30_000);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toContain('m3 (127.0.56.3) cannot be reached over SSH (root@127.0.56.3:2222: no SSH handshake within 5000 ms), and step 3 (Stop etcd on m3 and move its data dir aside)');
    expect(thread).toContain('Nothing was done for step 2.');
    await m3Untouched(t, m3);

    // The host is back: approved again, the run goes on to the end.
    for (const s of hung) s.destroy();
    await new Promise((r) => silent!.close(r));
    silent = undefined;
    await t.lab.restartSshd('m3', {});
    await approve(t, ts, again);
    await approve(t, ts, await waitForGate(t.slack, ts, 2));
    await waitForRunStatus(t.slack, ts, 'DONE', 120_000);
    expect((await t.lab.memberList()).map((m) => m.id)).not.toContain(m3);
  }, 240_000);
});

describe('a host without etcdctl', () => {
  let t: MedicLab;
  let backupId = '';
  beforeAll(async () => {
    t = await startMedicLab('readiness-tools', 57, { roles: ROLES });
    // The fault: m2 has no etcd-client: SSH sessions there find no etcdctl (nor etcdutl) on the PATH.
    await t.lab.restartSshd('m2', { withoutTools: ['etcdctl', 'etcdutl'] });
    await t.command('incident start restore drill', { user: 'UALICE' });
    const since = t.slack.lastSeq;
    await t.command('backup', { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 30_000, since);
    backupId = /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*lab\*/.exec(textOf(msg))![1]!;
  });
  afterAll(async () => {
    await t?.stop();
  });

  async function answer(text: string): Promise<string> {
    const since = t.slack.lastSeq;
    await t.command(text, { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Restore quorum of lab|Restore lab to backup|\/etcd restore.* refused)/.test(String(r.body.text)), 60_000, since);
    return textOf(msg);
  }

  /** No host was touched: every manifest and data dir in place, nothing moved aside, no run holds the cluster. */
  async function nothingChanged(): Promise<void> {
    for (const h of t.lab.hosts) {
      expect(existsSync(join(h.dataDir, 'member/snap/db'))).toBe(true);
      expect(readdirSync(dirname(h.dataDir)).filter((f) => f.includes('.before-r-'))).toEqual([]);
      expect(existsSync(join(dirname(h.manifestsDir), 'etcd-medic-aside'))).toBe(false);
    }
    const redis = connectRedis(t.config.settings.redisUrl);
    expect(await redis.keys(`${t.config.settings.queuePrefix}:run:*`)).toEqual([]);
    redis.disconnect();
  }

  it('/etcd restore is refused at planning, naming the host and the tool; nothing changes on any host', async () => {
    const text = await answer(`restore ${backupId}`);
    expect(text).toContain(`\`/etcd restore ${backupId}\` refused*`);
    expect(text).toContain('etcdctl not found on m2 (127.0.57.2): it is not on the PATH of root over SSH, and step 6 (Restore backup');
    expect(text).toContain('runs `etcdctl snapshot restore` there. Install etcd-client on m2.');
    await nothingChanged();
    expect(t.lab.hosts.every((h) => existsSync(join(h.manifestsDir, 'etcd.yaml')))).toBe(true);
    await t.lab.waitHealthy();
    expect(await timeline(t)).toContain(`denied: /etcd restore ${backupId} refused: a host the plan touches is not ready`);
  });

  it('/etcd restore-quorum --snapshot onto m2 is refused at planning; etcd is never started on an empty data dir', async () => {
    // The fault: m1 and m3 die; m2 alone answers, so it is the survivor the snapshot would be restored onto.
    await t.lab.killMember('m1');
    await t.lab.killMember('m3');
    const text = await answer(`restore-quorum --snapshot ${backupId}`);
    expect(text).toContain(`\`/etcd restore-quorum --snapshot ${backupId}\` refused*`);
    expect(text).toContain('etcdctl not found on m2 (127.0.57.2)');
    expect(text).toContain(`step 4 (Restore backup ${backupId} onto m2 as a one-member cluster) runs \`etcdctl snapshot restore\` there`);
    await nothingChanged();
    // m2 still runs on its own data; the dead members' manifests stay parked, their data where it was.
    await waitFor('m2 still answering', async () => (await t.lab.etcdctl(['endpoint', 'status'], [t.lab.host('m2').clientUrl], true)).code === 0, 10_000);
    expect(existsSync(join(t.lab.host('m2').manifestsDir, 'etcd.yaml'))).toBe(true);
  });
});
