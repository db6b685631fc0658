import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/lab/proc.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { caKeyParking, waitForLeaderOtherThan } from '../support/rebuilt-master.js';
import { latest, planRun, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };

/** Every path below `dir`, recursively. */
function pathsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...pathsUnder(p)] : [p];
  });
}

describe('issue-certs on a rebuilt master: the etcd CA key looked for on every surviving master before the step refuses (lab: three kubeadm masters)', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('issue-certs-signer', 141, { roles: ROLES });
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/signer/k${i}`, `v${i}`]);
    // The fault: m3's machine is reinstalled (data dir, manifest and pki gone); m1 and m2 lead on without it.
    await t.lab.wipeMember('m3');
    await waitForLeaderOtherThan(t.lab, 'm3');
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  /** Fault: the etcd CA key is taken off a master (moved out of the pki dir, as when only one master kept a copy). */
  const { caKey, park: takeKey, unpark: giveKeyBack } = caKeyParking(() => t.lab);
  const signerOf = (planned: string) => /maintenance\.snapshot\(\) from (m\d) /.exec(planned)![1]!;

  it('refuses when no surviving master holds the CA key once the step runs, naming each place it looked; nothing changed on m3 and m3 still in the member list', async () => {
    const plan = await planRun(t, 'replace m3', /^Replace m3 in lab/, 'UALICE');
    const planned = textOf(latest(t.slack, plan.ts));
    const signer = signerOf(planned);
    const other = signer === 'm1' ? 'm2' : 'm1';
    // The plan says where it signs, and which master it asks next.
    expect(planned).toContain(`which never leaves ${signer} (if ${signer} cannot sign, its CA key gone or another CA there, the same on ${other}, with ${caKey(other)})`);
    // The fault, between the plan and its approval: neither surviving master keeps its CA key.
    takeKey('m1');
    takeKey('m2');
    try {
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 90_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: FAILED$/);
      expect(thread).toContain(`no surviving master can sign m3's etcd certificates: looked on ${signer}: no etcd CA key at ${caKey(signer)}; ${other}: no etcd CA key at ${caKey(other)}. Nothing was issued and nothing changed on m3.`);
      // Nothing was made on m3 (no staged key, no pki) and no membership change happened: m3 is still listed, the others are voters.
      const pki = t.lab.host('m3').pkiDir;
      expect(existsSync(pki) ? readdirSync(pki) : []).toEqual([]);
      expect(pathsUnder(t.lab.host('m3').root).filter((f) => f.includes(`certs-${plan.runId}`))).toEqual([]);
      expect((await t.lab.memberList()).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    } finally {
      giveKeyBack('m1');
      giveKeyBack('m2');
    }
  }, 120_000);

  it('signs on the other surviving master when the planned one lost its CA key after the plan: m3 rejoins with certificates from the cluster CA', async () => {
    const plan = await planRun(t, 'replace m3', /^Replace m3 in lab/, 'UALICE');
    const signer = signerOf(textOf(latest(t.slack, plan.ts)));
    const other = signer === 'm1' ? 'm2' : 'm1';
    // The fault: the planned signer's CA key is gone by the time the step runs; only the other master keeps one.
    takeKey(signer);
    try {
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 120_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: DONE$/);
      expect(thread).toContain(`(signed on ${other}, not ${signer} as planned: ${signer}: no etcd CA key at ${caKey(signer)}; the CA key stayed there, the keys on m3)`);
      // The certificates on m3 verify against the cluster's CA, and m3 is a started voter with every key.
      for (const role of ['peer', 'server']) {
        const cert = join(t.lab.host('m3').pkiDir, `${role}.crt`);
        expect((await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, cert])).stdout.trim()).toBe(`${cert}: OK`);
      }
      expect(readFileSync(join(t.lab.host('m3').pkiDir, 'ca.crt'), 'utf8')).toBe(readFileSync(t.lab.tls.ca, 'utf8'));
      const members = await t.lab.memberList();
      expect(members.filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
      const { stdout } = await t.lab.etcdctl(['get', '/signer/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m3').clientUrl]);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(5);
      // The CA key never left its master: the planned signer still has none, the other still has its own.
      expect(existsSync(caKey(signer))).toBe(false);
      expect(existsSync(caKey(other))).toBe(true);
    } finally {
      giveKeyBack(signer);
    }
  }, 150_000);
});
