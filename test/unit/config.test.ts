import { describe, expect, it } from 'vitest';
import { loadConfig, parseInventory } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const FP = 'SHA256:' + 'A'.repeat(43);
const good = `
clusters:
  - name: prod
    etcd:
      endpoints: [https://10.0.0.1:2379]
      tls: { ca: /etc/medic/ca.crt, cert: /etc/medic/client.crt, key: /etc/medic/client.key }
    members:
      - name: master-1
        host: 10.0.0.1
        ssh: { user: core, keyFile: /etc/medic/id_ed25519, hostKeyFingerprint: ${FP} }
`;

function errorOf(text: string): string {
  try {
    parseInventory(text, '/etc/medic/inventory.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('inventory', () => {
  it('fills the platform defaults and the call deadline', () => {
    const inv = parseInventory(good, 'x.yaml');
    const c = inv.clusters[0]!;
    expect(c.platform).toEqual({ kind: 'kubeadm', manifestsDir: '/etc/kubernetes/manifests', dataDir: '/var/lib/etcd', pkiDir: '/etc/kubernetes/pki/etcd', kubeletCert: '/var/lib/kubelet/pki/kubelet-client-current.pem', kubeletConfig: '/etc/kubernetes/kubelet.conf', kubeletBootstrapConfig: '/etc/kubernetes/bootstrap-kubelet.conf', kubeletUnit: 'kubelet' });
    expect(c.etcd.callTimeoutMs).toBe(2000);
    expect(c.members[0]!.ssh!.port).toBe(22);
    expect(inv.workspace.roles.read).toEqual(['*']);
    expect(inv.workspace.roles.approve).toEqual([]);
    expect(inv.workspace.approvalTtlMinutes).toBe(15);
  });

  it('names the file, the path inside it and what was expected', () => {
    const msg = errorOf(good.replace('port: 22', '').replace('user: core,', 'user: core, port: "twenty-two",'));
    expect(msg).toBe('/etc/medic/inventory.yaml: clusters[0].members[0].ssh.port: expected number');
  });

  it('says when a required key is missing', () => {
    expect(errorOf(good.replace('host: 10.0.0.1', ''))).toBe('/etc/medic/inventory.yaml: clusters[0].members[0].host: expected string, but it is missing');
  });

  it('refuses a host-key fingerprint that is not OpenSSH SHA256', () => {
    const msg = errorOf(good.replace(FP, 'MD5:aa:bb'));
    expect(msg).toContain('clusters[0].members[0].ssh.hostKeyFingerprint: expected an OpenSSH fingerprint like SHA256:');
  });

  it('refuses a member name or path that could smuggle shell text', () => {
    expect(errorOf(good.replace('name: master-1', 'name: "m1;reboot"'))).toContain('clusters[0].members[0].name: expected a lowercase DNS-style name');
    expect(errorOf(good.replace('/etc/medic/id_ed25519', '/etc/../root/.ssh/id'))).toContain('clusters[0].members[0].ssh.keyFile: expected a path without ".."');
  });

  it('refuses unknown keys (a typo must not be ignored)', () => {
    expect(errorOf(good.replace('    members:', '    memebrs: []\n    members:'))).toContain('clusters[0]: unknown key(s) "memebrs"');
  });

  it('names the line of broken YAML', () => {
    expect(errorOf('clusters:\n  - name: [unclosed\n')).toMatch(/^\/etc\/medic\/inventory.yaml at line \d+: not valid YAML/);
  });

  it('refuses duplicate names and a default cluster that does not exist', () => {
    const twice = good + good.replace('clusters:\n', '');
    expect(errorOf(twice)).toContain('clusters[1].name: duplicate cluster name "prod"');
    expect(errorOf(`defaultCluster: staging\n${good}`)).toContain('defaultCluster: no cluster named "staging"');
  });

  it('refuses a watch channel outside the allowed channels: every button the watch posts there would be refused', () => {
    const watched = (allowed: string) => `workspace: { allowedChannels: [${allowed}] }\n${good.replace('    members:', '    watch: { intervalSeconds: 60, channel: CWATCH }\n    members:')}`;
    expect(errorOf(watched('CINCIDENT'))).toContain(
      'clusters[0].watch.channel: CWATCH is not in workspace.allowedChannels (CINCIDENT): the watch would post there, but every click on its buttons would be refused. Add it to allowedChannels or watch from an allowed channel',
    );
    expect(parseInventory(watched('CINCIDENT, CWATCH'), 'x.yaml').clusters[0]!.watch!.channel).toBe('CWATCH');
    // No allowed channels listed: the bot answers in any channel it is in.
    expect(parseInventory(good.replace('    members:', '    watch: { intervalSeconds: 60, channel: CWATCH }\n    members:'), 'x.yaml').clusters[0]!.watch!.channel).toBe('CWATCH');
  });

  it('refuses a member data dir or manifests dir with spaces, quotes or shell syntax, before any script could carry it to a host', () => {
    const withPath = (key: string, v: string) => good.replace('        host: 10.0.0.1\n', `        host: 10.0.0.1\n        ${key}: ${JSON.stringify(v)}\n`);
    expect(parseInventory(withPath('dataDir', '/data/etcd-1'), 'x.yaml').clusters[0]!.members[0]!.dataDir).toBe('/data/etcd-1');
    for (const hostile of ['/var/lib/etcd data', "/var/lib/etcd'; rm -rf /'", '/var/lib/$(touch x)', '/var/lib/`id`', '/var/lib/etcd\nmv']) {
      expect(errorOf(withPath('dataDir', hostile))).toBe('/etc/medic/inventory.yaml: clusters[0].members[0].dataDir: expected an absolute path of letters, digits, ".", "_", "-" and "/"');
    }
    expect(errorOf(withPath('manifestsDir', '/etc/kubernetes/my manifests'))).toContain('clusters[0].members[0].manifestsDir: expected an absolute path of letters');
    expect(errorOf(withPath('dataDir', '/var/lib/../etcd'))).toContain('clusters[0].members[0].dataDir: expected a path without ".."');
  });

  it('takes a kubeconfig path or "in-cluster", and nothing else', () => {
    const withKube = (v: string) => good.replace('    members:', `    kubeconfig: ${v}\n    members:`);
    expect(parseInventory(withKube('/etc/medic/kubeconfig'), 'x.yaml').clusters[0]!.kubeconfig).toBe('/etc/medic/kubeconfig');
    expect(parseInventory(withKube('in-cluster'), 'x.yaml').clusters[0]!.kubeconfig).toBe('in-cluster');
    expect(errorOf(withKube('kubeconfig.yaml'))).toBe('/etc/medic/inventory.yaml: clusters[0].kubeconfig: expected the absolute path of a kubeconfig file, or "in-cluster"');
    expect(errorOf(withKube('/etc/../root/kubeconfig'))).toContain('clusters[0].kubeconfig: expected a path without ".."');
  });

  it('reads the path from the environment and says when the file cannot be read', () => {
    expect(() => loadConfig({}, () => good)).toThrow(/ETCD_MEDIC_INVENTORY/);
    expect(() =>
      loadConfig({ ETCD_MEDIC_INVENTORY: '/nope.yaml' }, () => {
        throw Object.assign(new Error('x'), { code: 'ENOENT' });
      }),
    ).toThrow('/nope.yaml: cannot read the inventory file (ENOENT)');
    const cfg = loadConfig({ ETCD_MEDIC_INVENTORY: '/i.yaml', PORT: '8080' }, () => good);
    expect(cfg.settings.port).toBe(8080);
    expect(cfg.settings.redisUrl).toBe('redis://127.0.0.1:6379');
  });
});

describe('examples/inventory.yaml', () => {
  it('is a valid inventory', async () => {
    const { readFileSync } = await import('node:fs');
    const inv = parseInventory(readFileSync(new URL('../../examples/inventory.yaml', import.meta.url), 'utf8'), 'examples/inventory.yaml');
    expect(inv.clusters[0]!.members.map((m) => m.name)).toEqual(['master-1', 'master-2', 'master-3']);
  });
});
