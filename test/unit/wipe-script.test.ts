import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WIPE_NOTHING_TO_DO, wipeScript } from '../../src/platform/statefulset.js';

/** Runs the utility pod's script as its container does (`sh -c`), in a scratch directory that shows anything it wrongly made. */
const runScript = (dataDir: string, runId: string, cwd: string) => spawnSync('sh', ['-c', wipeScript(dataDir, runId)], { cwd, encoding: 'utf8' });

describe("the wipe's utility pod script", () => {
  it('moves every entry of the claim aside, whatever its name, runs none of it, keeps earlier runs\' asides, and says "already" the second time', () => {
    const root = mkdtempSync(join(tmpdir(), 'wipe-'));
    const cwd = join(root, 'cwd');
    mkdirSync(cwd);
    // The claim's directory under a path that is itself hostile to a shell (the inventory allows none of this; the script quotes anyway).
    const d = join(root, "claim $(touch pwned-path) 'q'");
    mkdirSync(join(d, 'member/snap'), { recursive: true });
    writeFileSync(join(d, 'member/snap/db'), 'db');
    // Entries whose names a shell would run or misread if they reached it unquoted.
    const hostile = ['$(touch pwned)', '`touch pwned2`', '; touch pwned3', '-rf', 'a b', 'new\nline', '*', '.hidden', '..dots', '...'];
    for (const h of hostile) writeFileSync(join(d, h), h);
    mkdirSync(join(d, 'before-r-0ld00000'));

    const first = runScript(d, 'r-0000c0de', cwd);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(readdirSync(d).sort()).toEqual(['before-r-0000c0de', 'before-r-0ld00000']);
    expect(readdirSync(join(d, 'before-r-0000c0de')).sort()).toEqual([...hostile, 'member'].sort());
    expect(existsSync(join(d, 'before-r-0000c0de/member/snap/db'))).toBe(true);
    // Nothing it read was run.
    expect(readdirSync(cwd)).toEqual([]);
    expect(readdirSync(root).filter((f) => f.startsWith('pwned'))).toEqual([]);

    const again = runScript(d, 'r-0000c0de', cwd);
    expect(again.status).toBe(WIPE_NOTHING_TO_DO);
    expect(again.stdout.trim()).toBe(`already moved aside: ${d}/before-r-0000c0de`);
  });
});
