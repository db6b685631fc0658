import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inventorySchema } from '../../src/config/schema.js';
import { waitFor } from '../../src/lab/proc.js';
import { installSystemctl } from '../../src/lab/systemctl.js';
import { UnitSupervisor } from '../../src/lab/unit-supervisor.js';
import { withEnvFlags } from '../../src/platform/flags.js';
import { memberPlace, platformOf } from '../../src/platform/index.js';
import { restoreStartLines } from '../../src/worker/steps/quorum-steps.js';

/**
 * What the systemd profile's lines do on masters as they are in the field,
 * where the lab's hosts differ: etcd.service as the etcd package installs it
 * (Type=notify), an API server unit crash-looping while etcd has no quorum,
 * a unit that takes its flags from elsewhere than etcd.conf, an enable that fails.
 */
const dir = mkdtempSync(join(tmpdir(), 'medic-systemd-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fp = `SHA256:${'A'.repeat(43)}`;
function cluster(names: string[], platform: Record<string, unknown> = {}) {
  const members = names.map((name, i) => ({ name, host: `10.0.0.${i + 1}`, ssh: { user: 'root', keyFile: '/k', hostKeyFingerprint: fp }, confFile: `${dir}/${name}/etc/etcd/etcd.conf`, dataDir: `${dir}/${name}/var/lib/etcd` }));
  return inventorySchema.parse({ clusters: [{ name: 'c', etcd: { endpoints: ['https://10.0.0.1:2379'] }, platform: { kind: 'systemd', ...platform }, members }] }).clusters[0]!;
}

function bashWith(bin: string, script: string, timeoutMs = 20_000) {
  return spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
}

/** The same, without blocking this process: for scripts whose systemctl talks to a supervisor running here. */
async function bashAsync(bin: string, script: string): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)('bash', ['-c', `set -euo pipefail\n${script}`], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { status: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A host's unit, run and log dirs, with the lab's systemctl first on its PATH (bin). */
function labHostDirs() {
  const root = mkdtempSync(join(dir, 'host-'));
  const dirs = { unitDir: join(root, 'units'), runDir: join(root, 'run'), logDir: join(root, 'log'), bin: join(root, 'bin') };
  for (const d of [dirs.unitDir, join(dirs.unitDir, 'multi-user.target.wants'), dirs.bin]) mkdirSync(d, { recursive: true });
  installSystemctl(dirs.bin, dirs);
  return dirs;
}

function fakeSystemctl(body: string): string {
  const bin = mkdtempSync(join(dir, 'bin-'));
  writeFileSync(join(bin, 'systemctl'), `#!/bin/bash\n${body}\n`);
  chmodSync(join(bin, 'systemctl'), 0o755);
  return bin;
}

describe('an /etcd restore on masters whose etcd.service is Type=notify (the etcd package of RHEL 7, OpenShift 3)', () => {
  /**
   * systemctl of one master of a three-member cluster. etcd 3 tells systemd it
   * is ready only once it has joined a cluster with a leader, so a blocking
   * start returns once a quorum (2 of 3) of the members run (a one-member cluster: at once); after
   * TimeoutStartSec (here 3 s) systemd gives up, kills it and the start fails.
   */
  function notifySystemctl(cl: string, host: string, quorum = 2): string {
    return fakeSystemctl(`
block=1; args=()
for a in "$@"; do case "$a" in --no-block) block=0 ;; *) args+=("$a") ;; esac; done
echo "\${args[*]}" >> ${cl}/${host}.calls
case "\${args[0]}" in
  enable|disable) exit 0 ;;
  start|restart)
    touch ${cl}/${host}.running
    [ $block = 1 ] || exit 0
    for i in $(seq 1 30); do
      [ "$(ls ${cl}/*.running | wc -l)" -ge ${quorum} ] && exit 0
      sleep 0.1
    done
    rm -f ${cl}/${host}.running
    echo "Job for etcd.service failed because a timeout was exceeded." >&2
    echo 'See "systemctl status etcd.service" and "journalctl -xe" for details.' >&2
    exit 1 ;;
esac`);
  }

  it('starts each restored member without waiting for a quorum: the members are restored one step after another', () => {
    const c = cluster(['m1', 'm2', 'm3']);
    const platform = platformOf(c);
    const cl = mkdtempSync(join(dir, 'cluster-'));
    // The plan's restore-snapshot steps, in order: each ends by starting its member's etcd.
    for (const m of c.members) {
      const r = bashWith(notifySystemctl(cl, m.name), restoreStartLines(platform, memberPlace(c, m, 'r1'), true).join('\n'));
      expect([m.name, r.status, r.stderr.trim()]).toEqual([m.name, 0, '']);
    }
    expect(readdirSync(cl).filter((f) => f.endsWith('.running')).sort()).toEqual(['m1.running', 'm2.running', 'm3.running']);
  });

  it('a one-member restore (restore-quorum) still waits for etcd to be up', () => {
    const c = cluster(['m1']);
    const cl = mkdtempSync(join(dir, 'cluster-'));
    const r = bashWith(notifySystemctl(cl, 'm1', 1), restoreStartLines(platformOf(c), memberPlace(c, c.members[0]!, 'r1'), false).join('\n'));
    expect(r.status).toBe(0);
    expect(readFileSync(join(cl, 'm1.calls'), 'utf8')).toContain('start etcd\n');
  });
});

describe('the API server units stopped for a restore', () => {
  it('a unit crash-looping while etcd has no quorum (activating, auto-restart) is stopped, noted and started again after', async () => {
    const { unitDir, runDir, logDir, bin } = labHostDirs();
    // The API server exits at once when it cannot reach etcd; Restart=always brings it back, with a growing backoff.
    writeFileSync(join(unitDir, 'api.service'), "[Service]\nExecStart=/bin/sh -c 'echo cannot reach etcd; exit 255'\nRestart=always\n[Install]\nWantedBy=multi-user.target\n");
    symlinkSync(join(unitDir, 'api.service'), join(unitDir, 'multi-user.target.wants', 'api.service'));
    const units = new UnitSupervisor('m1', unitDir, runDir, logDir, 50);
    units.start();
    try {
      // Two restarts in: the next waits 2 s, and the unit shows `activating` as systemd does between them.
      await waitFor('the API server unit to crash-loop', () => units.history('api').filter((s) => s.state === 'activating').length >= 3 && units.state('api') === 'activating', 20_000, 20);

      const c = cluster(['m1'], { apiserverUnits: ['api'] });
      const platform = platformOf(c);
      const place = platform.apiserverPlace(c.members[0]!, 'r1');
      mkdirSync(place.asideDir, { recursive: true });
      const stop = await bashAsync(bin, platform.apiserverLines(place, 'stop').join('\n'));
      expect([stop.status, stop.stderr]).toEqual([0, '']);
      // Stopped: no restart is pending any more, and the run knows it stopped it.
      expect(units.state('api')).toBe('inactive');
      expect(existsSync(String(place.marker)) ? readFileSync(String(place.marker), 'utf8') : '').toBe('api\n');

      const stoppedAt = Date.now();
      const start = await bashAsync(bin, platform.apiserverLines(place, 'start').join('\n'));
      expect([start.status, start.stderr]).toEqual([0, '']);
      expect(units.history('api').some((s) => s.at >= stoppedAt && s.state === 'active')).toBe(true);
    } finally {
      await units.stop();
    }
  });
});

describe('a member stopped by the bot on a systemd master', () => {
  it('cannot be started again by hand or by another unit until the bot starts it (the unit is masked), even where its unit reads etcd.conf as optional', async () => {
    const { unitDir, runDir, logDir, bin } = labHostDirs();
    const c = cluster(['m1']);
    const platform = platformOf(c);
    const place = memberPlace(c, c.members[0]!, 'r1');
    mkdirSync(join(dir, 'm1/etc/etcd'), { recursive: true });
    mkdirSync(place.asideDir, { recursive: true });
    writeFileSync(place.config, 'ETCD_NAME=m1\n');
    // As the etcd package ships it: the EnvironmentFile is optional, so a start without etcd.conf runs etcd on its defaults.
    writeFileSync(join(unitDir, 'etcd.service'), `[Service]\nEnvironmentFile=-${place.config}\nExecStart=/bin/sleep 3600\nRestart=always\n[Install]\nWantedBy=multi-user.target\n`);
    symlinkSync(join(unitDir, 'etcd.service'), join(unitDir, 'multi-user.target.wants', 'etcd.service'));
    const units = new UnitSupervisor('m1', unitDir, runDir, logDir, 50);
    units.start();
    try {
      expect((await bashAsync(bin, 'systemctl start etcd')).status).toBe(0);
      const stop = await bashAsync(bin, platform.stopLines(place).join('\n'));
      expect([stop.status, stop.stderr]).toEqual([0, '']);
      expect(units.state('etcd')).toBe('inactive');
      const byHand = await bashAsync(bin, 'systemctl start etcd');
      expect(byHand.status).not.toBe(0);
      expect(byHand.stderr).toContain('Unit etcd.service is masked.');
      expect(units.state('etcd')).toBe('inactive');
      // The bot's own start, once etcd.conf is back, unmasks it.
      writeFileSync(place.config, 'ETCD_NAME=m1\n');
      const start = await bashAsync(bin, platform.startLines(place, 'start').join('\n'));
      expect([start.status, start.stderr]).toEqual([0, '']);
      expect(units.state('etcd')).toBe('active');
    } finally {
      await units.stop();
    }
  });
});

describe('the layout check of a systemd master', () => {
  const c = cluster(['m1']);
  const m = c.members[0]!;
  mkdirSync(`${dir}/m1/etc/etcd`, { recursive: true });
  mkdirSync(`${dir}/m1/var/lib`, { recursive: true });
  const unitWith = (service: string) => {
    const file = join(mkdtempSync(join(dir, 'unit-')), 'etcd.service');
    writeFileSync(file, service);
    return fakeSystemctl(`[ "$1" = cat ] && [ "$2" = etcd ] || exit 1\necho '# /usr/lib/systemd/system/etcd.service'\ncat '${file}'`);
  };

  it('refuses a host whose etcd unit takes its flags from elsewhere than the inventory\'s etcd.conf', () => {
    // Flags on the ExecStart line, as hand-made units often have: writing etcd.conf changes nothing there.
    const r = bashWith(unitWith('[Service]\nType=notify\nExecStart=/usr/local/bin/etcd --name m1 --data-dir /var/lib/etcd --initial-cluster-state new\n'), platformOf(c).layoutLines(m).join('\n'));
    expect(r.stdout).toContain(`layout:the unit etcd does not read ${m.confFile}`);
  });

  it('passes a unit that reads it, optional (-) or not, beside other EnvironmentFiles and drop-ins', () => {
    for (const line of [`EnvironmentFile=-${m.confFile}`, `EnvironmentFile=${m.confFile}`, `EnvironmentFile=/etc/default/etcd\nEnvironmentFile=-${m.confFile}`]) {
      const r = bashWith(unitWith(`[Service]\nType=notify\nWorkingDirectory=/var/lib/etcd/\n${line}\nExecStart=/usr/bin/etcd\n`), platformOf(c).layoutLines(m).join('\n'));
      expect([line, r.status, r.stdout]).toEqual([line, 0, '']);
    }
  });
});

describe('starting etcd on a systemd master', () => {
  it('an enable that fails says why, instead of ending the step with nothing but an exit status', () => {
    const c = cluster(['m1']);
    const bin = fakeSystemctl(`[ "$1" = enable ] && { echo "Failed to enable unit: Unit file etcd.service does not exist." >&2; exit 1; }\nexit 0`);
    const r = bashWith(bin, platformOf(c).startLines(memberPlace(c, c.members[0]!, 'r1'), 'start').join('\n'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('Unit file etcd.service does not exist');
  });
});

describe('values written into etcd.conf', () => {
  // systemd reads an EnvironmentFile value that starts with a quote up to the closing quote, lines included,
  // drops a backslash (joining lines at a line end), and units that run etcd through `bash -c "… ${ETCD_NAME} …"`
  // (the RHEL package's) hand `$` and backquotes to a shell: such a value is not what etcd would get.
  const conf = 'ETCD_NAME=m1\nETCD_INITIAL_CLUSTER=m1=https://10.0.0.1:2380\nETCD_INITIAL_CLUSTER_STATE=new\nETCD_CERT_FILE=/etc/etcd/server.crt\n';
  it.each([
    ["'m0=https://10.0.0.9:2380,m1=https://10.0.0.1:2380"],
    ['"m0=https://10.0.0.9:2380,m1=https://10.0.0.1:2380'],
    ['m0\\=https://10.0.0.9:2380,m1=https://10.0.0.1:2380'],
    ['m1=https://10.0.0.1:2380,x=https://10.0.0.9:2380\\'],
    ['$(touch /tmp/pwned)=https://10.0.0.9:2380,m1=https://10.0.0.1:2380'],
    ['`id`=https://10.0.0.9:2380,m1=https://10.0.0.1:2380'],
    ['m1=https://10.0.0.1:2380,x";id;"=https://10.0.0.9:2380'],
  ])('refuses %s (a member name from the member list) rather than write what systemd reads otherwise', (value) => {
    expect(() => withEnvFlags(conf, { 'initial-cluster': value, 'initial-cluster-state': 'existing' })).toThrow(/refusing a value for ETCD_INITIAL_CLUSTER/);
  });
  it('writes names and URLs as they are', () => {
    expect(withEnvFlags(conf, { 'initial-cluster': 'm1=https://10.0.0.1:2380,master-0.example.com=https://[fd00::1]:2380' })).toContain('ETCD_INITIAL_CLUSTER=m1=https://10.0.0.1:2380,master-0.example.com=https://[fd00::1]:2380\n');
  });
});
