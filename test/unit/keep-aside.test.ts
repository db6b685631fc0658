import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepCopyLine, parseCheckedRead } from '../../src/worker/steps/host-steps.js';
import { keepAsideScript } from '../../src/worker/steps/quorum-steps.js';

// The script force-new-cluster sends over SSH to keep the survivor's config and read it back, run here by the same bash.
const bash = (script: string, env: Record<string, string> = {}) => {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
};
const MARK = 'medic-checked-read-follows\n';
const readBack = (path: string, stdout: string) => parseCheckedRead(path, stdout.slice(stdout.indexOf(MARK) + MARK.length));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'medic-keep-aside-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A manifest of some size, so that half of it is not a whole one. */
const manifest = `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command:\n${Array.from({ length: 40 }, (_, i) => `    - --flag-${i}=value-${i}`).join('\n')}\n`;

describe('keeping the survivor\'s config aside and reading it back', () => {
  it('keeps and reads back a config whose paths hold spaces, quotes and shell syntax, running none of it', () => {
    const root = join(dir, `hostile a'b "c" $(touch PWNED) \`touch PWNED2\``);
    const manifests = join(root, 'etc/kubernetes/manifests');
    mkdirSync(manifests, { recursive: true });
    const config = join(manifests, 'etcd.yaml');
    writeFileSync(config, manifest);
    const asideDir = join(root, 'etc/kubernetes/etcd-medic-aside');
    const aside = join(asideDir, 'etcd.yaml.r-1');
    const r = bash(keepAsideScript(asideDir, config, aside));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readBack(aside, r.stdout)).toBe(manifest);
    expect(readFileSync(aside, 'utf8')).toBe(manifest);
    expect(readFileSync(config, 'utf8')).toBe(manifest);
    expect(readdirSync(process.cwd()).filter((f) => f.startsWith('PWNED'))).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.startsWith('PWNED'))).toEqual([]);
  });

  it('a copy cut short (the script killed mid-copy) is not taken for the original by the next execution', () => {
    const root = join(dir, 'cut');
    const manifests = join(root, 'manifests');
    mkdirSync(manifests, { recursive: true });
    const config = join(manifests, 'etcd.yaml');
    writeFileSync(config, manifest);
    const asideDir = join(root, 'etcd-medic-aside');
    const aside = join(asideDir, 'etcd.yaml.r-1');
    // The fault: a slow disk and a dying worker: cp has written half of the file when its script is killed (SIGKILL).
    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'cp'), '#!/bin/bash\nsrc="${@: -2:1}"; dst="${@: -1}"\nhead -c $(( $(wc -c < "$src") / 2 )) "$src" > "$dst"\nkill -KILL $PPID\n');
    chmodSync(join(bin, 'cp'), 0o755);
    const first = bash(keepAsideScript(asideDir, config, aside), { PATH: `${bin}:${process.env.PATH}` });
    expect(first.code).not.toBe(0);
    // The next execution, with a whole cp: it reads the whole original, from the config still in place.
    const again = bash(keepAsideScript(asideDir, config, aside));
    expect(again.code).toBe(0);
    expect(readBack(aside, again.stdout)).toBe(manifest);
    expect(readFileSync(aside, 'utf8')).toBe(manifest);
  });

  it('says the config is absent when there is none to keep, and copies nothing', () => {
    const asideDir = join(dir, 'none/etcd-medic-aside');
    const aside = join(asideDir, 'etcd.yaml.r-1');
    const r = bash(keepAsideScript(asideDir, join(dir, 'none/manifests/etcd.yaml'), aside));
    expect(r.code).toBe(0);
    expect(readBack(aside, r.stdout)).toBeNull();
    expect(existsSync(aside)).toBe(false);
  });

  it('keeps the first copy: a second execution after the config was rewritten with --force-new-cluster reads the original', () => {
    const root = join(dir, 'twice');
    mkdirSync(join(root, 'manifests'), { recursive: true });
    const config = join(root, 'manifests/etcd.yaml');
    writeFileSync(config, manifest);
    const aside = join(root, 'aside/etcd.yaml.r-1');
    expect(bash(keepAsideScript(join(root, 'aside'), config, aside)).code).toBe(0);
    writeFileSync(config, `${manifest}    - --force-new-cluster=true\n`);
    const r = bash(keepAsideScript(join(root, 'aside'), config, aside));
    expect(readBack(aside, r.stdout)).toBe(manifest);
  });

  it('the original of a file a run rewrites (master-config.yaml, etcd.conf) is kept whole, with its times, even when the first copy was cut short', () => {
    const root = join(dir, 'refs');
    mkdirSync(join(root, 'bin'), { recursive: true });
    const src = join(root, 'master-config.yaml');
    writeFileSync(src, manifest);
    utimesSync(src, new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
    const aside = join(root, 'aside/master-config.yaml.r-1');
    mkdirSync(join(root, 'aside'));
    // The fault: cp has written half when its script dies.
    writeFileSync(join(root, 'bin/cp'), '#!/bin/bash\nsrc="${@: -2:1}"; dst="${@: -1}"\nhead -c $(( $(wc -c < "$src") / 2 )) "$src" > "$dst"\nkill -KILL $PPID\n');
    chmodSync(join(root, 'bin/cp'), 0o755);
    expect(bash(`set -euo pipefail\n${keepCopyLine(src, aside, { preserve: true })}`, { PATH: `${join(root, 'bin')}:${process.env.PATH}` }).code).not.toBe(0);
    expect(existsSync(aside)).toBe(false);
    expect(bash(`set -euo pipefail\n${keepCopyLine(src, aside, { preserve: true })}`).code).toBe(0);
    expect(readFileSync(aside, 'utf8')).toBe(manifest);
    expect(statSync(aside).mtime.toISOString()).toBe('2026-01-02T03:04:05.000Z');
  });
});
