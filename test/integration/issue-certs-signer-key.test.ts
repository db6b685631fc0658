import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, waitFor } from '../../src/lab/proc.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { latest, planRun, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };

describe('issue-certs: a master that cannot really sign (its CA key not the CA certificate\'s, or no openssl) is passed over before anything is signed there (lab: three kubeadm masters)', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('issue-certs-signer-key', 164, { roles: ROLES });
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/signer-key/k${i}`, `v${i}`]);
    // The fault: m3's machine is reinstalled (data dir, manifest and pki gone); m1 and m2 lead on without it.
    await t.lab.wipeMember('m3');
    await waitFor('a leader other than m3', async () => {
      const leader = await t.lab.leaderHex().catch(() => null);
      const m3 = (await t.lab.memberList()).find((m) => m.name === 'm3')?.id;
      return leader !== null && leader !== '0' && leader !== m3;
    }, 20_000, 200);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  const caKey = (name: string) => join(t.lab.host(name).pkiDir, 'ca.key');
  const parked = (name: string) => join(t.lab.host(name).root, 'tmp-ca.key.parked');
  const park = (name: string) => renameSync(caKey(name), parked(name));
  const unpark = (name: string) => {
    if (existsSync(parked(name))) renameSync(parked(name), caKey(name));
  };
  const signerOf = (planned: string) => /maintenance\.snapshot\(\) from (m\d) /.exec(planned)![1]!;

  it('refuses, naming the missing openssl, when the planned signer lost its CA key and the other master has no openssl; nothing is signed and m3 stays listed', async () => {
    const plan = await planRun(t, 'replace m3', /^Replace m3 in lab/, 'UALICE');
    const signer = signerOf(textOf(latest(t.slack, plan.ts)));
    const other = signer === 'm1' ? 'm2' : 'm1';
    // The faults, between plan and approval: the planned signer's CA key is gone, and the other master's sessions have no openssl.
    park(signer);
    await t.lab.restartSshd(other, { withoutTools: ['openssl'] });
    try {
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 90_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: FAILED$/);
      expect(thread).toContain(`no surviving master can sign m3's etcd certificates: looked on ${signer}: no etcd CA key at ${caKey(signer)}; ${other}: openssl is not on its PATH, it cannot sign.`);
      expect(thread).not.toContain("the CSR's own signature does not verify");
      expect(readFileSync(join(t.lab.host(other).pkiDir, 'ca.key'), 'utf8')).toContain('PRIVATE KEY');
      expect((await t.lab.memberList()).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
      expect(existsSync(join(t.lab.host('m3').pkiDir, 'peer.crt'))).toBe(false);
    } finally {
      unpark(signer);
      await t.lab.restartSshd(other, {});
    }
  }, 150_000);

  it('installs nothing when the signer hands back a certificate that lives longer than the days the plan approved', async () => {
    const plan = await planRun(t, 'replace m3', /^Replace m3 in lab/, 'UALICE');
    const signer = signerOf(textOf(latest(t.slack, plan.ts)));
    // The fault: the signing master's openssl (first on its PATH) signs for ten years whatever -days it is given.
    const wrapper = join(t.lab.host(signer).binDir, 'openssl');
    writeFileSync(wrapper, '#!/bin/bash\nargs=(); prev=\nfor a in "$@"; do if [ "$prev" = -days ]; then a=3650; fi; args+=("$a"); prev=$a; done\nexec /usr/bin/openssl "${args[@]}"\n', { mode: 0o755 });
    try {
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 90_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: FAILED$/);
      expect(thread).toMatch(new RegExp(`the certificate ${signer} signed for (peer|server) is not right \\(it is valid until \\d{4}-[^,]+, longer than the 365 days asked\\): not installed`));
      // Nothing reached m3's pki dir, and m3 is still listed (no membership change happened).
      for (const f of ['peer.crt', 'server.crt', 'peer.key', 'server.key']) expect(existsSync(join(t.lab.host('m3').pkiDir, f)), f).toBe(false);
      expect((await t.lab.memberList()).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    } finally {
      rmSync(wrapper, { force: true });
    }
  }, 150_000);

  it('signs on the other master when the planned signer holds a CA key that is not the CA certificate\'s: m3 rejoins with certificates from the cluster CA', async () => {
    const plan = await planRun(t, 'replace m3', /^Replace m3 in lab/, 'UALICE');
    const signer = signerOf(textOf(latest(t.slack, plan.ts)));
    const other = signer === 'm1' ? 'm2' : 'm1';
    // The fault: on the planned signer, ca.key is now another key (a CA regenerated by hand, its certificate put back from elsewhere).
    park(signer);
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', caKey(signer)]);
    try {
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 120_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: DONE$/);
      expect(thread).toContain(`(signed on ${other}, not ${signer} as planned: ${signer}: the etcd CA key at ${caKey(signer)} is not the key of its CA certificate; the CA key stayed there, the keys on m3)`);
      for (const role of ['peer', 'server']) {
        const cert = join(t.lab.host('m3').pkiDir, `${role}.crt`);
        expect((await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, cert])).stdout.trim()).toBe(`${cert}: OK`);
      }
      await waitFor('m3 a started voter', async () => (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).length === 3, 30_000, 250);
      const { stdout } = await t.lab.etcdctl(['get', '/signer-key/', '--prefix', '--keys-only', '--consistency=s'], [t.lab.host('m3').clientUrl]);
      expect(stdout.split('\n').filter(Boolean)).toHaveLength(5);
    } finally {
      renameSync(caKey(signer), `${caKey(signer)}.wrong`);
      unpark(signer);
    }
  }, 150_000);

  it('plans the signing on a master that has openssl when another holding the CA key lacks it: m3 rejoins', async () => {
    // The fault: m3's machine is reinstalled again, and m1's sessions have no openssl (its CA key is in place).
    await t.lab.wipeMember('m3');
    await waitFor('a leader other than m3', async () => {
      const leader = await t.lab.leaderHex().catch(() => null);
      const m3 = (await t.lab.memberList()).find((m) => m.name === 'm3')?.id;
      return leader !== null && leader !== '0' && leader !== m3;
    }, 20_000, 200);
    // m1 leads, so it is the healthy master asked first.
    const members = await t.lab.memberList();
    const m1 = members.find((m) => m.name === 'm1')!.id;
    const leader = await t.lab.leaderHex();
    if (leader !== m1) await t.lab.etcdctl(['move-leader', m1], [members.find((m) => m.id === leader)!.client]);
    await waitFor('m1 the leader', async () => (await t.lab.leaderHex().catch(() => null)) === m1, 20_000, 200);
    await t.lab.restartSshd('m1', { withoutTools: ['openssl'] });
    try {
      const plan = await planRun(t, 'replace m3', /^Replace m3 in lab/, 'UALICE');
      // The issue-certs step signs on m2, m1 kept as the fallback it looks at again when the step runs.
      const planned = textOf(latest(t.slack, plan.ts));
      expect(/with the etcd CA \S+ and its key \S+, which never leaves (m\d)/.exec(planned)?.[1], planned).toBe('m2');
      expect(planned).toContain(`(if m2 cannot sign, its CA key gone or another CA there, the same on m1, with ${caKey('m1')})`);
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 120_000);
      expect(header, threadOf(t.slack, plan.ts).join('\n')).toMatch(/: DONE$/);
      for (const role of ['peer', 'server']) {
        const cert = join(t.lab.host('m3').pkiDir, `${role}.crt`);
        expect((await run('openssl', ['verify', '-CAfile', t.lab.tls.ca, cert])).stdout.trim()).toBe(`${cert}: OK`);
      }
      await waitFor('m3 a started voter', async () => (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).length === 3, 30_000, 250);
    } finally {
      await t.lab.restartSshd('m1', {});
    }
  }, 180_000);
});
