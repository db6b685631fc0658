import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inventorySchema } from '../../src/config/schema.js';
import { platformOf } from '../../src/platform/index.js';
import { broughtBack } from '../../src/worker/steps/quorum-steps.js';

const dir = mkdtempSync(join(tmpdir(), 'medic-apis-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const clusterWith = (platform: Record<string, unknown>) =>
  inventorySchema.parse({ clusters: [{ name: 'c', etcd: { endpoints: ['https://10.0.0.1:2379'] }, platform, members: [{ name: 'm1', host: '10.0.0.1', ssh: { user: 'root', keyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` } }] }] }).clusters[0]!;

/** Runs a profile's lines with bash here, a `systemctl` stand-in first on the PATH that says every unit runs. */
function run(lines: string[]): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\n[ "$1" = is-active ] && echo active\nexit 0\n');
  chmodSync(join(bin, 'systemctl'), 0o755);
  const r = spawnSync('bash', ['-c', ['set -euo pipefail', ...lines].join('\n')], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/**
 * A run that ends early puts back the API servers its stop step stopped, and
 * says so only where it brought something back: what each profile's start
 * lines print is read the same way for every profile.
 */
describe('what the put-back of the API servers reads from each profile', () => {
  const root = (name: string) => {
    const d = join(dir, name);
    mkdirSync(join(d, 'manifests'), { recursive: true });
    return d;
  };

  it.each([
    ['openshift4', (d: string) => ({ kind: 'openshift4', manifestsDir: join(d, 'manifests'), controlPlaneManifests: ['kube-scheduler-pod.yaml', 'kube-apiserver-pod.yaml'] }), ['kube-scheduler-pod.yaml', 'kube-apiserver-pod.yaml']],
    ['kubeadm', (d: string) => ({ kind: 'kubeadm', manifestsDir: join(d, 'manifests') }), ['kube-apiserver.yaml']],
    ['systemd', (d: string) => ({ kind: 'systemd', confFile: join(d, 'etc', 'etcd', 'etcd.conf') }), []],
  ] as const)('%s: brought back after a stop, nothing said when nothing of the run is aside', (name, platform, files) => {
    const d = root(name);
    for (const f of files) writeFileSync(join(d, 'manifests', f), 'pod');
    const cluster = clusterWith(platform(d));
    const p = platformOf(cluster);
    const place = p.apiserverPlace(cluster.members[0]!, 'r-0000abcd');
    run(p.apiserverLines(place, 'stop'));
    const first = run(p.apiserverLines(place, 'start'));
    expect(broughtBack(first), first).toBe(true);
    const again = run(p.apiserverLines(place, 'start'));
    expect(broughtBack(again), again).toBe(false);
  });
});
