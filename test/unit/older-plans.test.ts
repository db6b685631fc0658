import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { inventorySchema } from '../../src/config/schema.js';
import { platformOf } from '../../src/platform/index.js';
import type { StepSpec } from '../../src/runbook/types.js';
import { configPlaceOf } from '../../src/worker/steps/host-steps.js';
import { asideDirOf } from '../../src/worker/steps/member-lock.js';
import { fence, type QuorumStepContext } from '../../src/worker/steps/quorum-steps.js';

// The host scripts of a step run here, in bash, instead of over SSH: what they do to the files is what is looked at.
vi.mock('../../src/worker/steps/host-steps.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/worker/steps/host-steps.js')>();
  return {
    ...actual,
    runScript: async (_target: unknown, script: string) => {
      const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { encoding: 'utf8', timeout: 60_000 });
      const out = `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim();
      if (r.status !== 0) throw new Error(`exit ${r.status}: ${out}`);
      return out;
    },
  };
});

const dir = mkdtempSync(join(tmpdir(), 'medic-older-plans-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs approved or under way when the bot is upgraded are carried out by the
 * new version from the parameters the old one planned: a kubeadm plan made
 * before the platform seam names the member's manifest `manifest` and
 * `manifestAside` (and `templateManifest`), not `config` and `configAside`.
 */
describe('kubeadm steps planned before the platform seam', () => {
  const root = join(dir, 'm2');
  const manifestsDir = join(root, 'etc/kubernetes/manifests');
  const cluster = inventorySchema.parse({
    clusters: [
      {
        name: 'c',
        etcd: { endpoints: ['https://10.0.0.1:2379'], stopWaitSeconds: 5 },
        platform: { kind: 'kubeadm' },
        members: [{ name: 'm2', host: '127.0.0.1', ssh: { user: 'root', keyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` }, manifestsDir, dataDir: join(root, 'var/lib/etcd') }],
      },
    ],
  }).clusters[0]!;
  const old = {
    name: 'm2',
    host: '127.0.0.1',
    manifest: `${manifestsDir}/etcd.yaml`,
    manifestAside: `${root}/etc/kubernetes/etcd-medic-aside/etcd.yaml.r-0ld0ld00`,
    asideDir: `${root}/etc/kubernetes/etcd-medic-aside`,
    dataDir: `${root}/var/lib/etcd`,
    dataAside: `${root}/var/lib/etcd.before-r-0ld0ld00`,
    pkiDir: '/etc/kubernetes/pki/etcd',
    clientHost: '127.0.0.1',
    peerUrl: 'https://127.0.0.1:2380',
    clientUrl: 'https://127.0.0.1:2379',
    // Nothing listens there: this member's etcd is dead, as a fenced member's is.
    listen: ['127.0.0.1:1', '127.0.0.1:9'],
  };

  it("a restore-quorum fence moves the dead member's manifest out of the kubelet's directory before its data dir", async () => {
    mkdirSync(manifestsDir, { recursive: true });
    mkdirSync(join(old.dataDir, 'member/snap'), { recursive: true });
    writeFileSync(old.manifest, 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: etcd\n      command: [etcd, --name=m2]\n');
    writeFileSync(join(old.dataDir, 'member/snap/db'), 'old data');
    const step: StepSpec = { kind: 'fence', title: 'Fence m2', destructive: true, operation: '…', params: { hosts: JSON.stringify([old]), unconfirmed: '[]' } };
    const ctx = { cluster, platform: platformOf(cluster), target: () => ({ host: '127.0.0.1' }) } as unknown as QuorumStepContext;

    const r = await fence(ctx, step);
    expect(r.output).toContain(`manifest moved to ${old.manifestAside}`);
    // Left in place, the kubelet would start the old member again on an empty data dir.
    expect([existsSync(old.manifest), existsSync(old.manifestAside)]).toEqual([false, true]);
    expect(existsSync(join(old.dataAside, 'member/snap/db'))).toBe(true);
  });

  it("a replace's steps find their manifest and aside dir", () => {
    const params = { manifest: old.manifest, manifestAside: old.manifestAside, name: 'm2' };
    expect(configPlaceOf({ params })).toEqual({ config: old.manifest, configAside: old.manifestAside });
    expect(asideDirOf(params)).toBe(old.asideDir);
  });
});
