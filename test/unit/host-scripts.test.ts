import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeadmPlatform } from '../../src/platform/kubeadm.js';
import { aliveFunction } from '../../src/worker/etcd-alive.js';
import { checkedReadScript, checkedWriteScript, moveAsideScript, parseCheckedRead } from '../../src/worker/steps/host-steps.js';
import { restoreScript, startGuard, uploadScript } from '../../src/worker/steps/quorum-steps.js';
import { memberLockPath, underMemberLock } from '../../src/worker/steps/member-lock.js';
import { waitFor } from '../../src/lab/proc.js';
import { quote, quoteScript } from '../../src/ssh/shell.js';

// The scripts the worker sends over SSH, run here by the same bash: what they do is what a host does.
const kubeadm = kubeadmPlatform({ kind: 'kubeadm', manifestsDir: '/etc/kubernetes/manifests', dataDir: '/var/lib/etcd', pkiDir: '/etc/kubernetes/pki/etcd', kubeletCert: '/var/lib/kubelet/pki/kubelet-client-current.pem', kubeletConfig: '/etc/kubernetes/kubelet.conf', kubeletBootstrapConfig: '/etc/kubernetes/bootstrap-kubelet.conf', kubeletUnit: 'kubelet' });
const bash = (script: string, opts: { input?: string | Buffer; env?: Record<string, string> } = {}) => {
  const r = spawnSync('bash', ['-c', script], { input: opts.input, encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** bash in a PID namespace of its own with its own /proc: the scripts' look for etcd processes sees none of this machine's. */
const bashAlone = (script: string) => bash(`unshare --pid --fork --mount bash -c 'mount -t proc proc /proc && bash -c "$1"' x ${quoteScript(script)}`);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'medic-scripts-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('medic_etcd_alive', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const closedPort = async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const p = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  };
  const ask = (c: Parameters<typeof aliveFunction>[0]) => bash(`set -euo pipefail\n${aliveFunction(c)}\nif why=$(medic_etcd_alive); then echo "ALIVE: $why"; else echo DOWN; fi`);

  it('sees a listener on any port of the member, not only 2379', async () => {
    const r = ask({ addrs: [`127.0.0.1:${await closedPort()}`, `127.0.0.1:${port}`], dataDir: join(dir, 'none'), configs: [], host: '127.0.0.1' });
    expect(r.stdout.trim()).toBe(`ALIVE: listens on 127.0.0.1:${port}`);
  });

  it('reads the listen URLs of the manifest too (0.0.0.0 means the member host)', async () => {
    const manifest = join(dir, 'etcd.yaml');
    writeFileSync(manifest, `spec:\n  containers:\n  - command:\n    - etcd\n    - --listen-client-urls=https://0.0.0.0:${port}\n    - --listen-peer-urls=https://127.0.0.1:${await closedPort()}\n`);
    const r = ask({ addrs: [`127.0.0.1:${await closedPort()}`], dataDir: join(dir, 'none'), configs: [manifest, join(dir, 'missing.yaml')], host: '127.0.0.1' });
    expect(r.stdout.trim()).toBe(`ALIVE: listens on 127.0.0.1:${port}`);
  });

  /**
   * The check, run in a PID namespace of its own with its own /proc, beside processes that look like etcd to it
   * (argv[0] "etcd", then `args`; started in `cwd`): the etcd members of lab tests running alongside on this
   * machine are not in it. `proc`: the mount options of that /proc; `asNobody`: the check runs as user 65534.
   * Returns what the check said and the pid of each fake, as the check sees them.
   */
  const askAlone = (c: Parameters<typeof aliveFunction>[0], fakes: { args: string[]; cwd?: string }[], opts: { proc?: string; asNobody?: boolean } = {}) => {
    const check = `set -euo pipefail\n${aliveFunction(c)}\nif why=$(medic_etcd_alive); then echo "ALIVE: $why"; else echo DOWN; fi`;
    const starts = fakes.map(
      (f) =>
        `(cd ${quote(f.cwd ?? '/')} && exec -a etcd bash -c 'sleep 30; true' ${f.args.map(quote).join(' ')}) & p=$!\n` +
        // Started once /proc shows the new command line (the exec done).
        `until tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q '^etcd '; do sleep 0.01; done; echo "pid:$p"`,
    );
    const run = opts.asNobody ? 'setpriv --reuid=65534 --regid=65534 --clear-groups bash -c "$1"' : 'bash -c "$1"';
    const inside = `set -e\nmount -t proc -o ${opts.proc ?? 'hidepid=off'} proc /proc\n${starts.join('\n')}\n${run}; true`;
    const r = spawnSync('unshare', ['--pid', '--fork', '--mount', 'bash', '-c', inside, 'x', check], { encoding: 'utf8', timeout: 30_000 });
    const lines = r.stdout.trim().split('\n');
    return { pids: lines.filter((l) => l.startsWith('pid:')).map((l) => Number(l.slice(4))), says: lines.filter((l) => !l.startsWith('pid:')).join('\n'), stderr: r.stderr };
  };

  it('sees an etcd process on the data dir even with every port closed, and only that data dir', async () => {
    const dataDir = join(dir, 'var-lib-etcd');
    const addrs = [`127.0.0.1:${await closedPort()}`];
    const fake = [{ args: [`--data-dir=${dataDir}/`] }];
    const r = askAlone({ addrs, dataDir, configs: [], host: '127.0.0.1' }, fake);
    expect(r.says).toBe(`ALIVE: runs (process ${r.pids[0]} with --data-dir=${dataDir})`);
    expect(askAlone({ addrs, dataDir: `${dataDir}-other`, configs: [], host: '127.0.0.1' }, fake).says).toBe('DOWN');
  });

  it('matches a data dir by the path it resolves to: a symlinked data dir, either way round, or one relative to the process', async () => {
    const real = join(dir, 'disk', 'etcd-data');
    mkdirSync(real, { recursive: true });
    const link = join(dir, 'var-lib-etcd-link');
    symlinkSync(real, link);
    const addrs = [`127.0.0.1:${await closedPort()}`];
    const seenWith = (args: string[], dataDir: string, cwd?: string) => {
      const r = askAlone({ addrs, dataDir, configs: [], host: '127.0.0.1' }, [{ args, cwd }]);
      return { pid: r.pids[0], says: r.says };
    };
    // The inventory names the link; etcd was started on the real dir.
    let r = seenWith([`--data-dir=${real}`], link);
    expect(r.says).toBe(`ALIVE: runs (process ${r.pid} with --data-dir=${real}, which is ${real} like ${link})`);
    // The other way round.
    r = seenWith(['--data-dir', `${link}/`], real);
    expect(r.says).toBe(`ALIVE: runs (process ${r.pid} with --data-dir=${link}/, which is ${real} like ${real})`);
    // A relative data dir, from the process's working directory.
    r = seenWith(['--data-dir=etcd-data'], link, join(dir, 'disk'));
    expect(r.says).toBe(`ALIVE: runs (process ${r.pid} with --data-dir=etcd-data, which is ${real} like ${link})`);
    // Another dir is another member's.
    expect(seenWith([`--data-dir=${real}`], join(dir, 'disk', 'other')).says).toBe('DOWN');
  });

  // The SSH user is not root and /proc is mounted with hidepid: etcd (root's) is hidden (2, invisible) or
  // unreadable (1, noaccess). A private mount namespace with its own /proc shows it without touching the machine's.
  for (const hidepid of ['invisible', 'noaccess']) {
    it(`cannot tell (so refuses) when /proc hides other users' processes (hidepid=${hidepid})`, async () => {
      const dataDir = join(dir, `hidden-etcd-${hidepid}`);
      const c = { addrs: [`127.0.0.1:${await closedPort()}`], dataDir, configs: [], host: '127.0.0.1' };
      const fake = [{ args: [`--data-dir=${dataDir}`] }];
      // The same user sees root's etcd where /proc hides nothing: what the check says then is what it should say with hidepid.
      const open = askAlone(c, fake, { asNobody: true });
      expect(open.says).toBe(`ALIVE: runs (process ${open.pids[0]} with --data-dir=${dataDir})`);
      const r = askAlone(c, fake, { asNobody: true, proc: `hidepid=${hidepid}` });
      expect(r.stderr).toBe('');
      expect(r.says).toBe('ALIVE: may run (cannot tell: the processes of other users cannot be read here, /proc is mounted with hidepid)');
    });
  }

  it('stop-and-move-aside leaves the data dir where it is while etcd still serves on its port', async () => {
    const root = join(dir, 'host1');
    const places = { config: join(root, 'manifests/etcd.yaml'), configAside: join(root, 'aside/etcd.yaml.r1'), asideDir: join(root, 'aside'), dataDir: join(root, 'etcd'), dataAside: join(root, 'etcd.before-r1') };
    mkdirSync(join(root, 'manifests'), { recursive: true });
    mkdirSync(join(places.dataDir, 'member'), { recursive: true });
    writeFileSync(places.config, 'x');
    const held = bash(moveAsideScript({ ...places, stop: kubeadm.stopLines(places), alive: { addrs: [`127.0.0.1:${port}`], dataDir: places.dataDir, configs: [], host: '127.0.0.1' }, waitSeconds: 1 }));
    expect(held.code).toBe(4);
    expect(held.stderr).toContain(`etcd of this member still listens on 127.0.0.1:${port} after 1 s: its data dir is left in place`);
    expect(existsSync(places.dataDir)).toBe(true);
    // In a PID namespace of its own: an etcd of a lab test running alongside would make the check unsure.
    const gone = bashAlone(moveAsideScript({ ...places, stop: kubeadm.stopLines(places), alive: { addrs: [`127.0.0.1:${await closedPort()}`], dataDir: places.dataDir, configs: [], host: '127.0.0.1' }, waitSeconds: 1 }));
    expect(gone.code).toBe(0);
    expect(gone.stdout).toContain(`data dir moved to ${places.dataAside}`);
    expect(existsSync(join(places.dataAside, 'member'))).toBe(true);
  });

  it('is unsure (so refuses) when a connect fails for another reason than a refusal (a name that does not resolve, no timeout tool)', () => {
    const dataDir = join(dir, 'none');
    const r = ask({ addrs: ['etcd-1.no-such-host.invalid:2379'], dataDir, configs: [], host: '127.0.0.1' });
    expect(r.stdout.trim()).toMatch(/^ALIVE: may run \(cannot tell: a connect to etcd-1\.no-such-host\.invalid:2379 failed/);
    const noTimeout = bash(`set -euo pipefail\nPATH=/nonexistent\n${aliveFunction({ addrs: ['127.0.0.1:1'], dataDir, configs: [], host: '127.0.0.1' })}\nif why=$(medic_etcd_alive); then echo "ALIVE: $why"; else echo DOWN; fi`);
    expect(noTimeout.stdout.trim()).toMatch(/^ALIVE: may run \(cannot tell/);
  });

  it('is unsure (so refuses) when a tool it reads the listen URLs with is missing on the host', async () => {
    const manifest = join(dir, 'etcd-nogrep.yaml');
    writeFileSync(manifest, `spec:\n  containers:\n  - command:\n    - etcd\n    - --listen-client-urls=https://127.0.0.1:${port}\n`);
    const bin = join(dir, 'bin-nogrep');
    mkdirSync(bin, { recursive: true });
    for (const t of ['timeout', 'sed', 'tr', 'cat', 'bash']) {
      const where = spawnSync('bash', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(bin, t), `#!/bin/sh\nexec ${where} "$@"\n`);
      chmodSync(join(bin, t), 0o755);
    }
    const script = aliveFunction({ addrs: [`127.0.0.1:${await closedPort()}`], dataDir: join(dir, 'none'), configs: [manifest], host: '127.0.0.1' });
    const r = bash(`set -euo pipefail\nPATH=${bin}\n${script}\nif why=$(medic_etcd_alive); then echo "ALIVE: $why"; else echo DOWN; fi`);
    expect(r.stdout.trim()).toBe('ALIVE: may run (cannot tell: grep is missing on this host)');
  });

  it('is unsure (so refuses) when a listen address has no port', () => {
    expect(ask({ addrs: ['127.0.0.1:'], dataDir: join(dir, 'none'), configs: [], host: '127.0.0.1' }).stdout.trim()).toBe('ALIVE: may run (cannot tell: no port in listen address 127.0.0.1:)');
  });
});

describe('checked remote writes and reads', () => {
  const manifest = 'apiVersion: v1\nkind: Pod\nspec: { containers: [ { name: etcd, command: [etcd, --name=m1] } ] }\n';

  it('installs the file only when every byte arrived', () => {
    const path = join(dir, 'w1.yaml');
    writeFileSync(path, 'old\n');
    // The fault: the transfer is cut short (half the bytes reach cat).
    const cut = bash(checkedWriteScript(path, manifest), { input: manifest.slice(0, 20) });
    expect(cut.code).toBe(7);
    expect(cut.stderr).toContain(`the copy of ${path} that reached the host is 20 bytes`);
    expect(cut.stderr).toContain(`not the ${Buffer.byteLength(manifest)} bytes sent`);
    expect(readFileSync(path, 'utf8')).toBe('old\n');
    expect(readdirSync(dir).filter((f) => f.includes('medic-tmp'))).toEqual([]);
    const whole = bash(checkedWriteScript(path, manifest), { input: manifest });
    expect(whole.code).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe(manifest);
  });

  it('writes nothing when cat fails or a guard refuses', () => {
    const path = join(dir, 'nodir', 'w2.yaml'); // cat cannot create the temp file here
    expect(bash(checkedWriteScript(path, manifest), { input: manifest }).code).not.toBe(0);
    const p2 = join(dir, 'w3.yaml');
    const r = bash(checkedWriteScript(p2, manifest, ['echo data dir not empty >&2; exit 5']), { input: manifest });
    expect(r.code).toBe(5);
    expect(existsSync(p2)).toBe(false);
  });

  it('leaves a file that already holds exactly these bytes alone, before any guard (a second execution after the first wrote it)', () => {
    const path = join(dir, 'w4.yaml');
    expect(bash(checkedWriteScript(path, manifest), { input: manifest }).code).toBe(0);
    const before = statSync(path);
    const again = bash(checkedWriteScript(path, manifest, ['echo the guard ran >&2; exit 5']), { input: manifest });
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(`${path} already holds these ${Buffer.byteLength(manifest)} bytes, sha256 ${createHash('sha256').update(manifest).digest('hex').slice(0, 16)}: nothing written`);
    expect(statSync(path).ino).toBe(before.ino); // not replaced
    // Other bytes are written as before (here the guard refuses them).
    expect(bash(checkedWriteScript(path, `${manifest}# changed\n`, ['echo the guard ran >&2; exit 5']), { input: `${manifest}# changed\n` }).code).toBe(5);
  });

  it('reads a file back only when the bytes match what the host counted', () => {
    const path = join(dir, 'r1.yaml');
    writeFileSync(path, manifest);
    const out = bash(checkedReadScript(path)).stdout;
    expect(parseCheckedRead(path, out)).toBe(manifest);
    expect(parseCheckedRead(path, bash(checkedReadScript(join(dir, 'absent.yaml'))).stdout)).toBeNull();
    // The fault: the output is cut off on the way (a dropped connection, a capped buffer).
    expect(() => parseCheckedRead(path, out.slice(0, out.length - 10))).toThrow(/truncated or changed on the way, not trusted/);
    expect(() => parseCheckedRead(path, 'apiVersion: v1\n')).toThrow(/output the bot does not recognise/);
    expect(() => parseCheckedRead(path, '')).toThrow(/not trusted/);
  });
});

describe('the member lock', () => {
  const place = (name: string) => {
    const root = join(dir, name);
    mkdirSync(join(root, 'manifests'), { recursive: true });
    mkdirSync(join(root, 'etcd', 'member'), { recursive: true });
    writeFileSync(join(root, 'manifests', 'etcd.yaml'), 'x');
    return { root, config: join(root, 'manifests/etcd.yaml'), configAside: join(root, 'aside/etcd.yaml.r1'), asideDir: join(root, 'aside'), dataDir: join(root, 'etcd'), dataAside: join(root, 'etcd.before-r1') };
  };

  it('a script that cannot take it within its wait fails, naming the lock, and does nothing', async () => {
    const p = place('lock-busy');
    const lock = { path: memberLockPath(p.asideDir), waitSeconds: 1 };
    mkdirSync(p.asideDir, { recursive: true });
    // Another execution's script holds the lock (and goes on holding it).
    const holder = spawn('flock', [lock.path, 'sleep', '30'], { stdio: 'ignore' });
    try {
      await waitFor('the other execution to hold the lock', async () => bash(`flock -n ${lock.path} true`).code !== 0, 5000, 20);
      const t0 = Date.now();
      const r = bash(underMemberLock(lock, moveAsideScript({ ...p, stop: kubeadm.stopLines(p), alive: { addrs: ['127.0.0.1:1'], dataDir: p.dataDir, configs: [], host: '127.0.0.1' }, waitSeconds: 1 })));
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(r.code).toBe(75);
      expect(r.stdout).toContain(`another execution of a step on this member holds ${lock.path}: waiting up to 1 s for it to finish`);
      expect(r.stderr.trim()).toBe(`another execution of a step on this member is still running on this host (it holds the lock ${lock.path}), 1 s after this one started waiting: nothing was done by this one`);
      expect(existsSync(p.config)).toBe(true);
      expect(existsSync(join(p.dataDir, 'member'))).toBe(true);
      expect(existsSync(p.dataAside)).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('is taken at once when free, and says nothing about waiting', () => {
    const p = place('lock-free');
    const r = bash(underMemberLock({ path: memberLockPath(p.asideDir), waitSeconds: 1 }, 'echo acted'));
    expect(r).toEqual({ code: 0, stdout: 'acted\n', stderr: '' });
    expect(existsSync(join(p.asideDir, 'member.lock'))).toBe(true);
  });
});

describe('the restore script', () => {
  const bin = () => join(dir, 'bin');
  // A stand-in etcdctl: `snapshot restore` does what $RESTORE says, `snapshot status` prints $REVISION.
  beforeAll(() => {
    mkdirSync(bin(), { recursive: true });
    writeFileSync(
      join(bin(), 'etcdctl'),
      `#!/bin/bash
if [ "$1 $2" = "snapshot restore" ]; then
  dd=; while [ $# -gt 0 ]; do [ "$1" = --data-dir ] && dd=$2; shift; done
  mkdir -p "$dd/member/snap"; echo partial > "$dd/member/snap/db"
  if [ -n "\${HOLD:-}" ]; then for i in $(seq 1 200); do [ -e "$HOLD" ] && break; sleep 0.05; done; fi
  if [ "$RESTORE" = fail ]; then echo "Error: write $dd/member/snap/db: no space left on device" >&2; exit 1; fi
  echo '{"level":"info","msg":"restored snapshot"}'; exit 0
fi
if [ "$1 $2" = "snapshot status" ]; then echo "{\\"hash\\":1,\\"revision\\":$REVISION,\\"totalKey\\":3,\\"totalSize\\":9}"; exit 0; fi
exit 2
`,
    );
    chmodSync(join(bin(), 'etcdctl'), 0o755);
  });
  const setup = (name: string) => {
    const root = join(dir, name);
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'snap.db'), 'x'.repeat(100));
    return {
      root,
      script: restoreScript({ ...restoreArgs(root), memberLock: { path: memberLockPath(root), waitSeconds: 20 } }),
    };
  };
  const restoreArgs = (root: string) => ({ remote: join(root, 'snap.db'), bytes: 100, revision: 42, name: 'm1', initialCluster: 'm1=https://10.0.0.1:2380', token: 't', peerUrl: 'https://10.0.0.1:2380', dataDir: join(root, 'etcd'), log: join(root, 'restore.log'), partialAside: join(root, 'etcd.partial-r1'), marker: join(root, 'restored-r1'), lock: join(root, 'restore.lock') });
  const run = (script: string, env: Record<string, string>) => bash(script, { env: { PATH: `${bin()}:${process.env.PATH}`, ...env } });

  it("fails with etcdctl's own message and writes no marker when the restore fails", () => {
    const { root, script } = setup('fails');
    const r = run(script, { RESTORE: 'fail', REVISION: '42' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('etcdctl snapshot restore failed (exit 1); etcd was not started');
    expect(r.stderr).toContain('no space left on device');
    expect(existsSync(join(root, 'restored-r1'))).toBe(false);
    // A retry moves the partial data dir aside (never deletes it) before restoring again.
    const again = run(script, { RESTORE: 'ok', REVISION: '42' });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/a data dir left by an earlier, unfinished restore was moved aside to .*etcd\.partial-r1-\d{14}/);
    expect(readdirSync(root).filter((f) => f.startsWith('etcd.partial-r1-'))).toHaveLength(1);
    expect(again.stdout).toContain('restored database checked offline: revision 42, as the backup');
    expect(existsSync(join(root, 'restored-r1'))).toBe(true);
  });

  it('does nothing when this run already verified a restore of the member (a second execution of the step)', () => {
    const { root, script } = setup('again');
    expect(run(script, { RESTORE: 'ok', REVISION: '42' }).code).toBe(0);
    expect(existsSync(join(root, 'restored-r1'))).toBe(true);
    const db = readFileSync(join(root, 'etcd', 'member', 'snap', 'db'), 'utf8');
    // Were it to restore again, this etcdctl would fail half-way and leave a partial data dir.
    const r = run(script, { RESTORE: 'fail', REVISION: '42' });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`a restore of this run is already verified on this host, ${join(root, 'restored-r1')} is there: nothing done`);
    expect(readFileSync(join(root, 'etcd', 'member', 'snap', 'db'), 'utf8')).toBe(db);
    expect(existsSync(join(root, 'restored-r1'))).toBe(true);
    expect(readdirSync(root).filter((f) => f.startsWith('etcd.partial-r1-'))).toEqual([]);
  });

  it('without the member lock (a script of an older worker), takes back the marker before it touches the data dir again', () => {
    const root = join(dir, 'again-old');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'snap.db'), 'x'.repeat(100));
    const script = restoreScript(restoreArgs(root));
    expect(run(script, { RESTORE: 'ok', REVISION: '42' }).code).toBe(0);
    const r = run(script, { RESTORE: 'fail', REVISION: '42' });
    expect(r.code).toBe(1);
    // The data dir now holds a partial, non-empty db: the manifest's guard must not find the marker beside it.
    expect(readFileSync(join(root, 'etcd', 'member', 'snap', 'db'), 'utf8')).toContain('partial');
    expect(existsSync(join(root, 'restored-r1'))).toBe(false);
  });

  it('runs one restore of a member at a time: a second execution, and the write that starts etcd, wait for it; then the second does nothing', async () => {
    const { root, script } = setup('twice');
    const go = join(root, 'go');
    const env = { ...process.env, PATH: `${bin()}:${process.env.PATH}`, RESTORE: 'ok', REVISION: '42' };
    const started = (s: string, extra: Record<string, string> = {}, input?: string) => {
      const c = spawn('bash', ['-c', s], { env: { ...env, ...extra }, stdio: ['pipe', 'pipe', 'pipe'] });
      const out = { stdout: '', stderr: '', code: null as number | null };
      c.stdout.on('data', (d) => (out.stdout += d));
      c.stderr.on('data', (d) => (out.stderr += d));
      c.stdin.end(input ?? '');
      return { out, done: new Promise<typeof out>((r) => c.on('close', (code) => r(((out.code = code), out)))) };
    };
    const first = started(script, { HOLD: go });
    try {
      const db = join(root, 'etcd', 'member', 'snap', 'db');
      await waitFor('the first restore to write its data dir', async () => existsSync(db), 5000, 25);
      const second = started(script);
      const start = started(checkedWriteScript(join(root, 'etcd.yaml'), 'manifest', startGuard({ lock: join(root, 'restore.lock'), marker: join(root, 'restored-r1'), dataDir: join(root, 'etcd'), backupId: 'b1' }), { path: memberLockPath(root), waitSeconds: 20 }), {}, 'manifest');
      await waitFor('both to wait for the member lock', async () => /waiting up to 20 s/.test(second.out.stdout) && /waiting up to 20 s/.test(start.out.stdout), 5000, 25);
      // A script of an older worker, which knows only the restore's own lock, is refused at once.
      const old = run(restoreScript(restoreArgs(root)), { RESTORE: 'ok', REVISION: '42' });
      expect(old.code).toBe(75);
      expect(old.stderr).toContain('another restore of this member is still running on this host');
      expect(existsSync(join(root, 'etcd.yaml'))).toBe(false);
      expect(second.out.code).toBeNull();
      writeFileSync(go, ''); // the first restore ends
      const [a, b, c] = await Promise.all([first.done, second.done, start.done]);
      expect(a.code).toBe(0);
      expect(a.stdout).toContain('restored database checked offline: revision 42, as the backup');
      expect(b.code).toBe(0);
      expect(b.stdout).toMatch(/the other execution finished after \d+ s: looking again before acting/);
      expect(b.stdout).toContain('a restore of this run is already verified on this host');
      expect(c.code).toBe(0);
      expect(readFileSync(join(root, 'etcd.yaml'), 'utf8')).toBe('manifest');
    } finally {
      writeFileSync(go, '');
    }
    expect(readdirSync(root).filter((f) => f.startsWith('etcd.partial-r1-'))).toEqual([]); // the first one's dir was left alone
    expect(existsSync(join(root, 'restored-r1'))).toBe(true);
  });

  it('uploads whole or not at all, and the restore moves the upload into place under the lock', () => {
    const root = join(dir, 'upload');
    mkdirSync(root, { recursive: true });
    const part = join(root, 'snap.db.part-1');
    // The fault: the transfer is cut short (the connection closed: the worker lost its lease).
    const cut = bash(uploadScript(part, 100), { input: 'x'.repeat(60) });
    expect(cut.code).toBe(8);
    expect(cut.stderr).toContain('the snapshot that reached the host is 60 bytes, the backup 100');
    expect(existsSync(part)).toBe(false);
    expect(bash(uploadScript(part, 100), { input: 'x'.repeat(100) }).code).toBe(0);
    const r = run(restoreScript({ ...restoreArgs(root), upload: part, memberLock: { path: memberLockPath(root), waitSeconds: 5 } }), { RESTORE: 'ok', REVISION: '42' });
    expect(r.code).toBe(0);
    expect(existsSync(part)).toBe(false);
    expect(readFileSync(join(root, 'snap.db'), 'utf8')).toBe('x'.repeat(100));
  });

  it('refuses a restored database whose revision is not the backup’s', () => {
    const { root, script } = setup('wrongrev');
    const r = run(script, { RESTORE: 'ok', REVISION: '7' });
    expect(r.code).toBe(8);
    expect(r.stderr).toContain('is at revision 7, the backup at 42: etcd was not started on it');
    expect(existsSync(join(root, 'restored-r1'))).toBe(false);
  });

  it('refuses an upload of the wrong size before touching anything', () => {
    const { root, script } = setup('short');
    writeFileSync(join(root, 'snap.db'), 'x'.repeat(60));
    const r = run(script, { RESTORE: 'ok', REVISION: '42' });
    expect(r.code).toBe(8);
    expect(r.stderr).toContain('is 60 bytes, the backup 100');
    expect(existsSync(join(root, 'etcd'))).toBe(false);
  });
});
