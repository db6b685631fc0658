import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envFlag } from '../../src/platform/flags.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };

/**
 * OpenShift 3 masters whose etcd.service is the etcd package's: Type=notify,
 * so `systemctl start etcd` returns once etcd has told systemd it is ready,
 * which etcd does only once it has joined a cluster with a leader.
 */
describe('runbooks on systemd masters whose etcd.service is Type=notify', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('systemd-notify', 103, { roles: ROLES, lab: { platform: 'systemd' } });
    // As the RHEL 7 package ships it; read at the next start of the unit.
    for (const h of t.lab.hosts) {
      mkdirSync(join(h.unitDir!, 'etcd.service.d'), { recursive: true });
      writeFileSync(join(h.unitDir!, 'etcd.service.d', '10-package.conf'), '[Service]\nType=notify\n');
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  async function plan(text: string, header: RegExp): Promise<{ ts: string }> {
    const since = t.slack.lastSeq;
    await t.command(text, { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && header.test(String(r.body.text)), 60_000, since);
    return { ts: msg.ts! };
  }

  async function approve(ts: string, step: number): Promise<void> {
    const b = await waitForGate(t.slack, ts, step);
    const c = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_approve', blockId: b.blockId, value: b.approve });
    expect(await answerAt(t.slack, c.responseUrl)).toContain(`Approved step ${step + 1}`);
  }

  async function voters(): Promise<string[]> {
    return (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort();
  }

  it('replace: the new member is started as a learner and the start returns once it has joined', async () => {
    await t.lab.corruptMember('m3');
    const { ts } = await plan('replace m3', /^Replace m3 in lab/);
    await approve(ts, 1); // member remove
    await approve(ts, 2); // stop and move aside
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    const m3 = t.lab.host('m3');
    expect(m3.units!.history('etcd').some((s) => s.state === 'activating' && s.sub === 'start')).toBe(true);
    expect(m3.units!.state('etcd')).toBe('active');
  }, 300_000);

  it('restore-quorum through force-new-cluster: the one member left is up at each restart, the others join it', async () => {
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    }
    const { ts } = await plan('restore-quorum', /^Restore quorum of lab/);
    await approve(ts, 1); // fence m2, m3
    await approve(ts, 2); // force-new-cluster on m1
    await waitForRunStatus(t.slack, ts, 'DONE', 300_000);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(envFlag(readFileSync(t.lab.host('m1').confFile!, 'utf8'), 'force-new-cluster')).toBeUndefined();
    for (const h of t.lab.hosts) expect([h.name, h.units!.state('etcd')]).toEqual([h.name, 'active']);
  }, 360_000);

  it('/etcd restore brings every member to the snapshot: no member waits, at its start, for members the next steps restore', async () => {
    await t.lab.etcdctl(['put', '/restore/marker', 'before']);
    const since = t.slack.lastSeq;
    await t.command('backup', { user: 'UALICE' });
    const taken = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 30_000, since);
    const id = /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*lab\*/.exec(textOf(taken))![1]!;
    const revision = Number(/revision (\d+),/.exec(textOf(taken))![1]);
    for (let i = 0; i < 3; i++) await t.lab.etcdctl(['put', `/later/k${i}`, `v${i}`]);

    const { ts } = await plan(`restore ${id}`, /^Restore lab to backup/);
    await approve(ts, 2); // stop the API servers
    await approve(ts, 3); // stop etcd everywhere, data aside
    await waitForRunStatus(t.slack, ts, 'DONE', 300_000);

    for (const h of t.lab.hosts) {
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
      expect(Number(/"revision":(\d+)/.exec(stdout)![1])).toBe(revision);
      expect(envFlag(readFileSync(h.confFile!, 'utf8'), 'initial-cluster-state')).toBe('new');
      // Started the Type=notify way (activating until READY=1), and up.
      expect(h.units!.history('etcd').some((s) => s.state === 'activating' && s.sub === 'start')).toBe(true);
      expect(h.units!.state('etcd')).toBe('active');
    }
    const { stdout } = await t.lab.etcdctl(['get', '/later/', '--prefix', '--keys-only']);
    expect(stdout.trim()).toBe('');
  }, 420_000);
});
