import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { portOpen } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
// etcd on other ports than 2379/2380 on every host, as some installers set it up.
const CLIENT = 12379;
const PEER = 12380;

describe('etcd on non-default ports: a live member is never fenced or moved aside', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('nondefault-ports', 51, {
      roles: ROLES,
      lab: { clientPort: CLIENT, peerPort: PEER },
      // A hung etcd is waited for this long before the step refuses (60 s by default).
      editInventory: (inv) => {
        inv.clusters[0].etcd.stopWaitSeconds = 5;
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('restore-quorum refuses to fence a member that hangs but still listens on its port', async () => {
    await t.lab.killMember('m3');
    // The fault: m2 hangs (SIGSTOP): it answers nothing, but its port 12379 is still open.
    const m2 = t.lab.host('m2').supervisor.pid()!;
    process.kill(m2, 'SIGSTOP');
    try {
      const since = t.slack.lastSeq;
      await t.command('restore-quorum', { user: 'UALICE' });
      const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Restore quorum of lab|\/etcd restore-quorum refused)/.test(String(r.body.text)), 60_000, since);
      const text = textOf(msg);
      expect(text).toContain('`/etcd restore-quorum` refused');
      expect(text).toContain(`m2 is supposed to be dead, but etcd still listens on 127.0.51.2:${CLIENT} (seen over SSH) though it does not answer: it is hung, not dead`);
      expect(text).toContain('Nothing was changed.');
      expect(existsSync(join(t.lab.host('m2').manifestsDir, 'etcd.yaml'))).toBe(true);
      expect(existsSync(t.lab.host('m2').dataDir)).toBe(true);
    } finally {
      process.kill(m2, 'SIGCONT');
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  });

  it('replace does not move the data dir out from under an etcd that still runs on its port', { timeout: 300_000 }, async () => {
    const m3 = t.lab.host('m3');
    // The fault: someone started m3's etcd by hand (outside the kubelet) from its manifest, and it hangs.
    await t.lab.stopMember('m3');
    const manifest = readFileSync(join(m3.parkedDir, 'etcd.yaml'), 'utf8');
    const cmd = (parseYaml(manifest) as { spec: { containers: { command: string[] }[] } }).spec.containers[0]!.command;
    let byHand: ChildProcess | null = spawn(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
    try {
      await waitFor('m3 by hand up', () => portOpen(m3.ip, CLIENT), 20_000);
      await t.lab.waitHealthy();
      process.kill(byHand.pid!, 'SIGSTOP');

      const since = t.slack.lastSeq;
      await t.command('replace m3', { user: 'UALICE' });
      const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Replace m3 in |\/etcd replace.* refused)/.test(String(r.body.text)), 60_000, since);
      const ts = plan.ts!;
      expect(textOf(plan)).toContain(`nothing on 127.0.51.3:${CLIENT}, 127.0.51.3:${PEER}`);
      for (const step of [1, 2]) {
        const g = await waitForGate(t.slack, ts, step);
        await answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: g.blockId, value: g.approve })).responseUrl);
      }
      await waitForRunStatus(t.slack, ts, 'FAILED', 180_000);
      const thread = threadOf(t.slack, ts).join('\n');
      expect(thread).toContain(`etcd of this member still listens on 127.0.51.3:${CLIENT} after 5 s: its data dir is left in place`);
      expect(thread).toMatch(/Not done: 3\. Stop etcd on m3 and move its data dir aside; 4\. Add m3 back as a learner/);
      // The running etcd's data dir is where it was; nothing was moved aside from under it.
      expect(existsSync(join(m3.dataDir, 'member/snap/db'))).toBe(true);
      expect(readdirSync(join(m3.root, 'var/lib')).filter((f) => f.includes('.before-'))).toEqual([]);
    } finally {
      byHand?.kill('SIGKILL');
      byHand = null;
    }
  });
});
