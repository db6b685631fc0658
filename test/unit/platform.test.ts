import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inventorySchema } from '../../src/config/schema.js';
import { envFlag, withEnvFlags } from '../../src/platform/flags.js';
import { memberPlace, platformOf } from '../../src/platform/index.js';
import { etcdClientUrls, withEtcdClientUrls } from '../../src/platform/master-config.js';
import { referenceDrift } from '../../src/status/references.js';

const dir = mkdtempSync(join(tmpdir(), 'medic-platform-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const member = (extra: Record<string, unknown> = {}) => ({ name: 'm1', host: '10.0.0.1', ssh: { user: 'root', keyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` }, ...extra });
const clusterWith = (platform: Record<string, unknown>, m: Record<string, unknown> = {}) =>
  inventorySchema.parse({ clusters: [{ name: 'c', etcd: { endpoints: ['https://10.0.0.1:2379'] }, platform, members: [member(m)] }] }).clusters[0]!;

/** Runs a script with a `systemctl` stand-in first on the PATH that logs its calls and answers from `units` (name → active?). */
function withSystemctl(script: string, units: Record<string, boolean>, opts: { stopFails?: string } = {}) {
  const bin = mkdtempSync(join(dir, 'bin-'));
  const log = join(bin, 'calls');
  writeFileSync(
    join(bin, 'systemctl'),
    `#!/bin/bash
echo "$*" >> ${log}
verb=$1; shift
u=; for a in "$@"; do case "$a" in --*) ;; *) u=$a ;; esac; done
# As systemd: a unit that is not installed can still be masked (a link to /dev/null).
case "$verb" in mask|unmask) exit 0 ;; esac
case " ${Object.keys(units).join(' ')} " in *" $u "*) ;; *) [ "$verb" = disable ] && exit 1; echo "Unit $u.service not loaded." >&2; exit 5 ;; esac
case "$verb" in
  is-active) case " ${Object.entries(units).filter(([, a]) => a).map(([u]) => u).join(' ')} " in *" $u "*) echo active; exit 0 ;; *) echo inactive; exit 3 ;; esac ;;
  stop) ${opts.stopFails ? `echo "${opts.stopFails}" >&2; exit 1` : 'exit 0'} ;;
  *) exit 0 ;;
esac
`,
  );
  chmodSync(join(bin, 'systemctl'), 0o755);
  const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  return { ...r, calls: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [] };
}

describe('etcd flags in an EnvironmentFile', () => {
  const conf = '# etcd.conf\nETCD_NAME=m1\nETCD_INITIAL_CLUSTER="m1=https://10.0.0.1:2380"\n#ETCD_FORCE_NEW_CLUSTER=true\nETCD_INITIAL_CLUSTER=m1=https://old:2380\nETCD_DATA_DIR=/var/lib/etcd\n';

  it('reads the last assignment, unquoted, and not a commented one', () => {
    expect(envFlag(conf, 'initial-cluster')).toBe('m1=https://old:2380');
    expect(envFlag(conf, 'force-new-cluster')).toBeUndefined();
    expect(envFlag(conf, 'name')).toBe('m1');
  });

  it('sets a flag in place of its first assignment, drops the later ones, adds a new one at the end, takes one out; comments stay', () => {
    const out = withEnvFlags(conf, { 'initial-cluster': 'm1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380', 'initial-cluster-state': 'existing', name: null });
    expect(out).toBe('# etcd.conf\nETCD_INITIAL_CLUSTER=m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380\n#ETCD_FORCE_NEW_CLUSTER=true\nETCD_DATA_DIR=/var/lib/etcd\nETCD_INITIAL_CLUSTER_STATE=existing\n');
    expect(envFlag(out, 'initial-cluster')).toBe('m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380');
  });

  it('refuses a value that would start another line (another variable)', () => {
    expect(() => withEnvFlags(conf, { name: 'm1\nETCD_FORCE_NEW_CLUSTER=true' })).toThrow(/line break/);
  });
});

describe('the kubeadm profile', () => {
  const cluster = clusterWith({ kind: 'kubeadm' }, { manifestsDir: '/srv/k/manifests' });
  const platform = platformOf(cluster);

  it('puts things where kubeadm does, with per-member overrides', () => {
    expect(memberPlace(cluster, cluster.members[0]!, 'r1')).toMatchObject({ config: '/srv/k/manifests/etcd.yaml', configAside: '/srv/k/etcd-medic-aside/etcd.yaml.r1', dataDir: '/var/lib/etcd', dataAside: '/var/lib/etcd.before-r1', pkiDir: '/etc/kubernetes/pki/etcd' });
    expect(platform.backupPaths(cluster.members[0]!)).toEqual(['/srv/k/manifests/etcd.yaml', '/etc/kubernetes/pki/etcd']);
  });

  it('changes the etcd container command of the manifest and nothing else', () => {
    const manifest = 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: sidecar\n      command: [sleep, "1"]\n    - name: etcd\n      image: etcd:3.4\n      command: [etcd, --name=m1, --force-new-cluster, --initial-cluster-state=new]\n';
    const out = platform.withFlags(manifest, { 'force-new-cluster': null, 'initial-cluster-state': 'existing', 'initial-cluster': 'm1=https://10.0.0.1:2380' });
    const doc = parseYaml(out) as { spec: { containers: { name: string; image?: string; command: string[] }[] } };
    expect(doc.spec.containers[0]!.command).toEqual(['sleep', '1']);
    expect(doc.spec.containers[1]!.command).toEqual(['etcd', '--name=m1', '--initial-cluster-state=existing', '--initial-cluster=m1=https://10.0.0.1:2380']);
    expect(doc.spec.containers[1]!.image).toBe('etcd:3.4');
    expect(platform.flag(out, 'force-new-cluster')).toBeUndefined();
    expect(platform.flag(manifest, 'force-new-cluster')).toBe('true');
  });

  it('says when a host has no static pod directory', () => {
    const r = withSystemctl(platform.layoutLines(cluster.members[0]!).join('\n'), {});
    expect(r.stdout).toContain('layout:there is no /srv/k/manifests');
  });
});

describe('the systemd profile', () => {
  const root = join(dir, 'host');
  const cluster = clusterWith({ kind: 'systemd' }, { confFile: `${root}/etc/etcd/etcd.conf`, dataDir: `${root}/var/lib/etcd` });
  const platform = platformOf(cluster);
  const m = cluster.members[0]!;
  const place = memberPlace(cluster, m, 'r1');

  it('keeps etcd.conf, runs aside next to /etc/etcd, and backs up /etc/etcd whole', () => {
    expect(place.config).toBe(`${root}/etc/etcd/etcd.conf`);
    expect(place.configAside).toBe(`${root}/etc/etcd-medic-aside/etcd.conf.r1`);
    expect(platformOf(clusterWith({ kind: 'systemd' })).backupPaths(member() as never)).toEqual(['/etc/etcd']);
  });

  it('stops etcd: etcd.conf aside, the unit disabled before it is stopped; a second run changes nothing', () => {
    mkdirSync(`${root}/etc/etcd`, { recursive: true });
    mkdirSync(`${root}/etc/etcd-medic-aside`, { recursive: true });
    writeFileSync(place.config, 'ETCD_NAME=m1\n');
    const first = withSystemctl(platform.stopLines(place).join('\n'), { etcd: true });
    expect(first.status).toBe(0);
    // Disabled and masked before the stop: nothing starts it again, a reboot or a start by hand included.
    expect(first.calls).toEqual(['disable etcd', 'mask --runtime etcd', 'stop etcd']);
    expect(existsSync(place.config)).toBe(false);
    expect(readFileSync(place.configAside, 'utf8')).toBe('ETCD_NAME=m1\n');
    const again = withSystemctl(platform.stopLines(place).join('\n'), { etcd: false });
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(`etcd.conf already away from ${place.config}`);
    expect(readFileSync(place.configAside, 'utf8')).toBe('ETCD_NAME=m1\n');
  });

  it('a host without the unit has nothing to stop; a stop that fails otherwise fails the step', () => {
    expect(withSystemctl(platform.stopLines(place).join('\n'), {}).stdout).toContain('etcd is not installed on this host');
    const failed = withSystemctl(platform.stopLines(place).join('\n'), { etcd: true }, { stopFails: 'Job for etcd.service canceled.' });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('systemctl stop etcd failed: Job for etcd.service canceled.');
  });

  it('starts etcd enabled; a restart restarts', () => {
    expect(withSystemctl(platform.startLines(place, 'start').join('\n'), { etcd: false }).calls).toEqual(['unmask --runtime etcd', 'enable etcd', 'start etcd']);
    expect(withSystemctl(platform.startLines(place, 'restart').join('\n'), { etcd: true }).calls).toEqual(['unmask --runtime etcd', 'enable etcd', 'restart etcd']);
  });

  it('stops the API server units that run, and starts again only those', () => {
    const cl = clusterWith({ kind: 'systemd', apiserverUnits: ['api', 'controllers'] }, { confFile: `${root}/etc/etcd/etcd.conf` });
    const p = platformOf(cl);
    const ap = p.apiserverPlace(cl.members[0]!, 'r2');
    const stop = withSystemctl(p.apiserverLines(ap, 'stop').join('\n'), { api: true, controllers: false });
    expect(stop.status).toBe(0);
    expect(stop.calls).toEqual(['is-active api', 'stop api', 'is-active controllers']);
    const start = withSystemctl(p.apiserverLines(ap, 'start').join('\n'), { api: false, controllers: false });
    expect(start.calls).toEqual(['start api']);
    const again = withSystemctl(p.apiserverLines(ap, 'start').join('\n'), { api: true, controllers: false });
    expect(again.calls).toEqual([]);
    expect(again.stdout).toContain('started again already');
  });

  it('says when etcd is not a unit on the host', () => {
    const r = withSystemctl(platform.layoutLines(m).join('\n'), { kubelet: true });
    expect(r.stdout).toContain('layout:the unit etcd is not installed');
  });

  it('refuses a member path the platform has no use for', () => {
    expect(() => clusterWith({ kind: 'systemd' }, { manifestsDir: '/etc/kubernetes/manifests' })).toThrow(/manifestsDir.{0,4} has no meaning on a systemd cluster/);
  });
});

describe('files that name the members (OpenShift 3)', () => {
  const members = [
    { name: 'm1', peerURLs: ['https://10.0.0.1:2380'], clientURLs: ['https://10.0.0.1:2379'], inventoryHost: 'master-0.example.com' },
    { name: 'm4', peerURLs: ['https://10.0.0.4:2380'], clientURLs: ['https://10.0.0.4:2379'] },
    { name: '', peerURLs: ['https://10.0.0.9:2380'], clientURLs: [] },
  ];

  it('client URLs match a member by address or inventory host name and port; a removed one is stale, a new one missing', () => {
    const d = referenceDrift('client-urls', ['https://master-0.example.com:2379', 'https://10.0.0.3:2379'], members);
    expect(d.stale).toEqual(['https://10.0.0.3:2379']);
    expect(d.missing).toEqual(['https://10.0.0.4:2379']);
    expect(referenceDrift('client-urls', ['https://10.0.0.1:2379/', 'https://10.0.0.4:2379'], members)).toMatchObject({ stale: [], missing: [] });
    // The right host on another port is not the member.
    expect(referenceDrift('client-urls', ['https://10.0.0.1:4001', 'https://10.0.0.4:2379'], members).stale).toEqual(['https://10.0.0.1:4001']);
  });

  it('an initial cluster must name each started member by name and peer URL', () => {
    const d = referenceDrift('members', ['m1=https://10.0.0.1:2380', 'm3=https://10.0.0.3:2380'], members);
    expect(d).toEqual({ stale: ['m3=https://10.0.0.3:2380'], missing: ['m4=https://10.0.0.4:2380'], wanted: ['m1=https://10.0.0.1:2380', 'm4=https://10.0.0.4:2380'] });
  });

  it('master-config.yaml: the urls read and replaced, comments and other keys kept', () => {
    const text = '# the master\nkind: MasterConfig\netcdClientInfo:\n  ca: master.etcd-ca.crt # the CA\n  urls:\n    - https://master-0.example.com:2379\n    - https://10.0.0.3:2379\nservingInfo:\n  bindAddress: 0.0.0.0:8443\n';
    expect(etcdClientUrls(text)).toEqual(['https://master-0.example.com:2379', 'https://10.0.0.3:2379']);
    const out = withEtcdClientUrls(text, ['https://10.0.0.1:2379', 'https://10.0.0.4:2379']);
    expect(etcdClientUrls(out)).toEqual(['https://10.0.0.1:2379', 'https://10.0.0.4:2379']);
    expect(out).toContain('# the master');
    expect(out).toContain('ca: master.etcd-ca.crt # the CA');
    expect(out).toContain('bindAddress: 0.0.0.0:8443');
    expect(etcdClientUrls('kind: MasterConfig\n')).toBeNull();
    expect(() => withEtcdClientUrls('kind: MasterConfig\n', [])).toThrow(/no etcdClientInfo/);
  });

  it('the systemd profile names master-config.yaml, etcd.conf and flanneld; kubeadm nothing', () => {
    const cl = clusterWith({ kind: 'systemd' });
    const refs = platformOf(cl).references(cl.members[0]!);
    expect(refs.map((r) => [r.path, r.names, !!r.rewrite])).toEqual([
      ['/etc/origin/master/master-config.yaml', 'client-urls', true],
      ['/etc/etcd/etcd.conf', 'members', true],
      ['/etc/sysconfig/flanneld', 'client-urls', true],
    ]);
    expect(refs[2]!.read('FLANNEL_ETCD_ENDPOINTS=https://a:2379, https://b:2379\n')).toEqual(['https://a:2379', 'https://b:2379']);
    expect(refs[1]!.rewrite!('ETCD_NAME=m1\nETCD_INITIAL_CLUSTER=m1=x\n', ['m1=x', 'm2=y'])).toBe('ETCD_NAME=m1\nETCD_INITIAL_CLUSTER=m1=x,m2=y\n');
    expect(platformOf(clusterWith({ kind: 'kubeadm' })).references(member() as never)).toEqual([]);
  });
});
