import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inventorySchema } from '../../src/config/schema.js';
import { adaptedUrlProblem, withUrlHost } from '../../src/platform/adapt-config.js';
import { envFlag } from '../../src/platform/flags.js';
import { platformOf } from '../../src/platform/index.js';
import { memberSans } from '../../src/platform/member-pki.js';
import { etcdManifest } from '../../src/lab/manifest.js';

const member = (i: number) => ({ name: `m${i}`, host: `10.0.0.${i}`, ssh: { user: 'root', keyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` } });
const clusterWith = (platform: Record<string, unknown>) =>
  inventorySchema.parse({ clusters: [{ name: 'c', etcd: { endpoints: ['https://10.0.0.1:2379'] }, platform, members: [member(1), member(3)] }] }).clusters[0]!;

const from = { name: 'm1', host: '10.0.0.1', dataDir: '/var/lib/etcd', pkiDir: '/etc/kubernetes/pki/etcd' };
const to = { name: 'm3', host: '10.0.0.3', dataDir: '/data/etcd', pkiDir: '/srv/pki/etcd' };

describe('withUrlHost', () => {
  it('moves only the URLs on the peer\'s address, keeping scheme, port, path and the loopback ones', () => {
    expect(withUrlHost('https://127.0.0.1:2379,https://10.0.0.1:2379', '10.0.0.1', '10.0.0.3')).toBe('https://127.0.0.1:2379,https://10.0.0.3:2379');
    // 10.0.0.12 is another host, not 10.0.0.1 with a digit after it.
    expect(withUrlHost('https://10.0.0.12:2380,http://10.0.0.1:2381/metrics', '10.0.0.1', '10.0.0.3')).toBe('https://10.0.0.12:2380,http://10.0.0.3:2381/metrics');
    expect(withUrlHost('https://[fd00::1]:2380', 'fd00::1', 'fd00::3')).toBe('https://[fd00::3]:2380');
    expect(withUrlHost('https://m1.example:2380', 'M1.example', 'm3.example')).toBe('https://m3.example:2380');
  });
});

describe('kubeadm: a peer\'s manifest made into a rebuilt master\'s', () => {
  const platform = platformOf(clusterWith({ kind: 'kubeadm' }));
  // kubeadm's own shape: listen on loopback and the address, metrics on loopback only.
  const theirs = platform.withFlags(etcdManifest({ name: 'm1', ip: '10.0.0.1', dataDir: from.dataDir, pkiDir: from.pkiDir, initialCluster: 'm1=https://10.0.0.1:2380', state: 'new', token: 't' }), {
    'listen-client-urls': 'https://127.0.0.1:2379,https://10.0.0.1:2379',
    'listen-metrics-urls': 'http://127.0.0.1:2381',
  });
  const mine = platform.adaptConfig(theirs, from, to);
  const flag = (n: string) => platform.flag(mine, n);

  it('takes the name, the URLs with the new address, the data dir and this host\'s certificate paths', () => {
    expect(flag('name')).toBe('m3');
    expect(flag('data-dir')).toBe('/data/etcd');
    expect(flag('advertise-client-urls')).toBe('https://10.0.0.3:2379');
    expect(flag('listen-client-urls')).toBe('https://127.0.0.1:2379,https://10.0.0.3:2379');
    expect(flag('initial-advertise-peer-urls')).toBe('https://10.0.0.3:2380');
    expect(flag('listen-peer-urls')).toBe('https://10.0.0.3:2380');
    expect(flag('listen-metrics-urls')).toBe('http://127.0.0.1:2381');
    expect(flag('cert-file')).toBe('/srv/pki/etcd/server.crt');
    expect(flag('peer-key-file')).toBe('/srv/pki/etcd/peer.key');
    expect(flag('trusted-ca-file')).toBe('/srv/pki/etcd/ca.crt');
    // What the joining member needs is set afterwards, by withFlags: the peer's stay until then.
    expect(flag('initial-cluster-state')).toBe('new');
    expect(flag('client-cert-auth')).toBe('true');
    expect(flag('snapshot-count')).toBe('10000');
  });

  it('moves the pod\'s host mounts and its advertise annotation with it; nothing of the peer\'s address is left', () => {
    const doc = parseYaml(mine);
    expect(doc.spec.volumes.map((v: { hostPath: { path: string } }) => v.hostPath.path)).toEqual(['/data/etcd', '/srv/pki/etcd']);
    expect(doc.spec.containers[0].volumeMounts.map((v: { mountPath: string }) => v.mountPath)).toEqual(['/data/etcd', '/srv/pki/etcd']);
    expect(doc.metadata.annotations['kubeadm.kubernetes.io/etcd.advertise-client-urls']).toBe('https://10.0.0.3:2379');
    // The initial cluster still names m1 until withFlags sets it: every other mention of m1's address is gone.
    expect(platform.withFlags(mine, { 'initial-cluster': 'm3=https://10.0.0.3:2380' })).not.toContain('10.0.0.1');
    expect(doc.spec.containers[0].image).toBe('registry.k8s.io/etcd:3.4.23-0');
  });

  it('refuses a manifest without an etcd command rather than guessing', () => {
    expect(() => platform.adaptConfig('spec: {containers: []}\n', from, to)).toThrow(/m1's manifest has no etcd container command/);
  });
});

describe('systemd: a peer\'s etcd.conf made into a rebuilt master\'s', () => {
  const platform = platformOf(clusterWith({ kind: 'systemd' }));
  const theirs = [
    '# managed by openshift-ansible',
    'ETCD_NAME=m1',
    'ETCD_DATA_DIR=/var/lib/etcd',
    'ETCD_LISTEN_CLIENT_URLS=https://10.0.0.1:2379',
    'ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.1:2379',
    'ETCD_LISTEN_PEER_URLS=https://10.0.0.1:2380',
    'ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.1:2380',
    'ETCD_CERT_FILE=/etc/etcd/server.crt',
    'ETCD_PEER_CERT_FILE=/etc/etcd/peer.crt',
    'ETCD_TRUSTED_CA_FILE=/etc/etcd/ca.crt',
    'ETCD_HEARTBEAT_INTERVAL=500',
    '',
  ].join('\n');
  it('sets the same flags through etcd.conf, comments and other settings kept', () => {
    const mine = platform.adaptConfig(theirs, { ...from, pkiDir: '/etc/etcd' }, { ...to, pkiDir: '/etc/etcd' });
    expect(envFlag(mine, 'name')).toBe('m3');
    expect(envFlag(mine, 'data-dir')).toBe('/data/etcd');
    expect(envFlag(mine, 'listen-peer-urls')).toBe('https://10.0.0.3:2380');
    expect(envFlag(mine, 'advertise-client-urls')).toBe('https://10.0.0.3:2379');
    expect(envFlag(mine, 'cert-file')).toBe('/etc/etcd/server.crt');
    expect(envFlag(mine, 'heartbeat-interval')).toBe('500');
    expect(mine.startsWith('# managed by openshift-ansible\n')).toBe(true);
    expect(mine).not.toContain('10.0.0.1');
    // A flag the peer does not set is not invented (etcd.conf has no metrics URL here).
    expect(envFlag(mine, 'listen-metrics-urls')).toBeUndefined();
  });
});

describe('memberSans', () => {
  it('names the member, its address and loopback, as kubeadm issues etcd certificates', () => {
    expect(memberSans({ name: 'm3', host: '10.0.0.3' })).toEqual({ dns: ['m3', 'localhost'], ips: ['10.0.0.3', '127.0.0.1', '::1'] });
    expect(memberSans({ name: 'm3', host: 'master-3.example' })).toEqual({ dns: ['m3', 'master-3.example', 'localhost'], ips: ['127.0.0.1', '::1'] });
  });
});

describe('an adapted config that would advertise the peer\'s addresses', () => {
  const platform = platformOf(clusterWith({ kind: 'kubeadm' }));
  it('is refused: every advertised URL must be on the member\'s own host', () => {
    // The fault: m1's manifest names it by host name where the inventory has its address, so its URLs are not moved.
    const theirs = platform.withFlags(etcdManifest({ name: 'm1', ip: '10.0.0.1', dataDir: from.dataDir, pkiDir: from.pkiDir, initialCluster: 'm1=https://m1.example:2380', state: 'new', token: 't' }), {
      'advertise-client-urls': 'https://m1.example:2379',
      'initial-advertise-peer-urls': 'https://m1.example:2380',
      'listen-client-urls': 'https://0.0.0.0:2379',
      'listen-peer-urls': 'https://0.0.0.0:2380',
    });
    const mine = platform.adaptConfig(theirs, from, to);
    expect(platform.flag(mine, 'advertise-client-urls')).toBe('https://m1.example:2379');
    expect(adaptedUrlProblem((f) => platform.flag(mine, f), 'https://10.0.0.3:2380', '10.0.0.3')).toBe('its initial-advertise-peer-urls would be https://m1.example:2380, not on 10.0.0.3');
    const client = platform.adaptConfig(platform.withFlags(theirs, { 'initial-advertise-peer-urls': 'https://10.0.0.1:2380' }), from, to);
    expect(adaptedUrlProblem((f) => platform.flag(client, f), 'https://10.0.0.3:2380', '10.0.0.3')).toBe('its advertise-client-urls would be https://m1.example:2379, not on 10.0.0.3');
    // Adapted as it should be: its own address (loopback ones as the peer has them), or the host name it was added with.
    const ok = platform.adaptConfig(platform.withFlags(theirs, { 'advertise-client-urls': 'https://10.0.0.1:2379,https://127.0.0.1:2379', 'initial-advertise-peer-urls': 'https://10.0.0.1:2380' }), from, to);
    expect(adaptedUrlProblem((f) => platform.flag(ok, f), 'https://10.0.0.3:2380', '10.0.0.3')).toBeNull();
    // A host written as a shell variable (OpenShift 4's discovery file) is each host's own.
    const perHost = (f: string) => ({ 'initial-advertise-peer-urls': 'https://${ETCD_IPV4_ADDRESS}:2380', 'advertise-client-urls': 'https://${ETCD_IPV4_ADDRESS}:2379' })[f];
    expect(adaptedUrlProblem(perHost, 'https://10.0.0.3:2380', '10.0.0.3')).toBeNull();
    const own = platform.adaptConfig(platform.withFlags(theirs, { 'advertise-client-urls': 'https://10.0.0.1:2379', 'initial-advertise-peer-urls': 'https://10.0.0.1:2380' }), from, to);
    expect(adaptedUrlProblem((f) => platform.flag(own, f), 'https://10.0.0.3:2380', '10.0.0.3')).toBeNull();
    expect(adaptedUrlProblem((f) => platform.flag(own, f), 'https://m3.example:2380', '10.0.0.3')).toBeNull();
  });
});
