import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { etcdConf, etcdUnit } from '../../src/lab/openshift.js';
import { execArgv, execLine, loadUnit, parseEnvironmentFile, parseUnitFile, splitWords, unitEnvironment, UnitError } from '../../src/lab/unit-files.js';

describe('lab systemd: EnvironmentFile', () => {
  it('reads KEY=VALUE lines, skipping comments and blank lines, removing one pair of quotes', () => {
    const env = parseEnvironmentFile(
      ['#[member]', 'ETCD_NAME=master-0', '', '  ETCD_DATA_DIR=/var/lib/etcd/  ', '; old style comment', '#ETCD_WAL_DIR=', 'ETCD_CLIENT_CERT_AUTH="true"', "QUOTED='a b'", 'ESCAPED="say \\"hi\\""', 'EMPTY=', 'not a pair', '9BAD=x', 'URLS=https://a:2379,https://b:2379'].join('\n'),
    );
    expect(env).toEqual({
      ETCD_NAME: 'master-0',
      ETCD_DATA_DIR: '/var/lib/etcd/',
      ETCD_CLIENT_CERT_AUTH: 'true',
      QUOTED: 'a b',
      ESCAPED: 'say "hi"',
      EMPTY: '',
      URLS: 'https://a:2379,https://b:2379',
    });
  });

  it("the lab's etcd.conf gives etcd every flag it needs, with the OpenShift 3 key names", () => {
    const env = parseEnvironmentFile(etcdConf({ name: 'm1', ip: '10.0.0.1', dataDir: '/var/lib/etcd', pkiDir: '/etc/etcd', initialCluster: 'm1=https://10.0.0.1:2380', state: 'new', token: 't' }));
    expect(env).toMatchObject({
      ETCD_NAME: 'm1',
      ETCD_DATA_DIR: '/var/lib/etcd',
      ETCD_LISTEN_CLIENT_URLS: 'https://10.0.0.1:2379',
      ETCD_ADVERTISE_CLIENT_URLS: 'https://10.0.0.1:2379',
      ETCD_LISTEN_PEER_URLS: 'https://10.0.0.1:2380',
      ETCD_INITIAL_ADVERTISE_PEER_URLS: 'https://10.0.0.1:2380',
      ETCD_INITIAL_CLUSTER: 'm1=https://10.0.0.1:2380',
      ETCD_INITIAL_CLUSTER_STATE: 'new',
      ETCD_INITIAL_CLUSTER_TOKEN: 't',
      ETCD_CERT_FILE: '/etc/etcd/server.crt',
      ETCD_KEY_FILE: '/etc/etcd/server.key',
      ETCD_TRUSTED_CA_FILE: '/etc/etcd/ca.crt',
      ETCD_CLIENT_CERT_AUTH: 'true',
      ETCD_PEER_CERT_FILE: '/etc/etcd/peer.crt',
      ETCD_PEER_KEY_FILE: '/etc/etcd/peer.key',
      ETCD_PEER_TRUSTED_CA_FILE: '/etc/etcd/ca.crt',
      ETCD_PEER_CLIENT_CERT_AUTH: 'true',
      ETCD_SNAPSHOT_COUNT: '10000',
    });
    // Commented-out defaults stay comments.
    expect(env).not.toHaveProperty('ETCD_WAL_DIR');
  });
});

describe('lab systemd: unit files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lab-units-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('parses sections, comments and continued lines', () => {
    expect(parseUnitFile('[Unit]\nDescription=Etcd Server\n# comment\n[Service]\nExecStart=/usr/bin/etcd \\\n  --name=x\n; other comment\nRestart=always\n')).toEqual([
      { section: 'Unit', key: 'Description', value: 'Etcd Server' },
      { section: 'Service', key: 'ExecStart', value: '/usr/bin/etcd  --name=x' },
      { section: 'Service', key: 'Restart', value: 'always' },
    ]);
  });

  it("loads the lab's etcd.service: its EnvironmentFile, the one ExecStart without flags, Restart=always", () => {
    writeFileSync(join(dir, 'etcd.service'), etcdUnit('/etc/etcd/etcd.conf'));
    const spec = loadUnit(dir, 'etcd');
    expect(spec).toMatchObject({ description: 'Etcd Server', execStart: ['/usr/bin/etcd'], environmentFiles: [{ path: '/etc/etcd/etcd.conf', optional: false }], restart: 'always' });
  });

  it('applies drop-ins in name order: an empty ExecStart= resets the command, list settings add up, the last scalar wins', () => {
    writeFileSync(join(dir, 'etcd.service'), '[Service]\nEnvironmentFile=-/etc/etcd/etcd.conf\nEnvironment=A=1\nExecStart=/usr/bin/etcd\nRestart=always\n');
    mkdirSync(join(dir, 'etcd.service.d'));
    writeFileSync(join(dir, 'etcd.service.d', '20-later.conf'), '[Service]\nRestart=no\nEnvironment="B=two words"\n');
    writeFileSync(join(dir, 'etcd.service.d', '10-wrap.conf'), "[Service]\nExecStart=\nExecStart=/bin/sh -c 'exec /usr/bin/etcd'\nRestart=on-failure\n");
    writeFileSync(join(dir, 'etcd.service.d', 'notes.txt'), '[Service]\nRestart=always\n');
    const spec = loadUnit(dir, 'etcd');
    expect(spec.execStart).toEqual(["/bin/sh -c 'exec /usr/bin/etcd'"]);
    expect(spec.environment).toEqual(['A=1', '"B=two words"']);
    expect(spec.environmentFiles).toEqual([{ path: '/etc/etcd/etcd.conf', optional: true }]);
    expect(spec.restart).toBe('no');
    expect(execArgv(spec, unitEnvironment(spec))).toEqual(['/bin/sh', '-c', 'exec /usr/bin/etcd']);
    expect(unitEnvironment(spec)).toMatchObject({ A: '1', B: 'two words' });
  });

  it('refuses a simple service with a second ExecStart (no reset in the drop-in), or none, or a relative command', () => {
    writeFileSync(join(dir, 'etcd.service'), '[Service]\nExecStart=/usr/bin/etcd\n');
    mkdirSync(join(dir, 'etcd.service.d'));
    writeFileSync(join(dir, 'etcd.service.d', 'extra.conf'), '[Service]\nExecStart=/usr/bin/etcd --debug\n');
    expect(() => execLine(loadUnit(dir, 'etcd'))).toThrow(/more than one ExecStart= setting/);
    writeFileSync(join(dir, 'etcd.service.d', 'extra.conf'), '[Service]\nExecStart=\n');
    expect(() => execLine(loadUnit(dir, 'etcd'))).toThrow(/has no ExecStart=/);
    writeFileSync(join(dir, 'etcd.service.d', 'extra.conf'), '[Service]\nExecStart=\nExecStart=etcd\n');
    expect(() => execLine(loadUnit(dir, 'etcd'))).toThrow(/not absolute/);
    const err = (() => {
      try {
        loadUnit(dir, 'nope');
      } catch (e) {
        return e as UnitError;
      }
    })();
    expect(err).toBeInstanceOf(UnitError);
    expect(err!.kind).toBe('not-found');
  });

  it('EnvironmentFile values win over Environment=; a missing file fails the start unless marked with "-"', () => {
    const conf = join(dir, 'etcd.conf');
    writeFileSync(conf, 'ETCD_NAME=from-file\n');
    writeFileSync(join(dir, 'etcd.service'), `[Service]\nEnvironment=ETCD_NAME=from-unit OTHER=kept\nEnvironmentFile=${conf}\nEnvironmentFile=-${join(dir, 'optional.conf')}\nExecStart=/usr/bin/etcd\n`);
    expect(unitEnvironment(loadUnit(dir, 'etcd'))).toMatchObject({ ETCD_NAME: 'from-file', OTHER: 'kept', PATH: expect.stringContaining('/usr/bin') });
    rmSync(conf);
    const err = (() => {
      try {
        unitEnvironment(loadUnit(dir, 'etcd'));
      } catch (e) {
        return e as UnitError;
      }
    })();
    expect(err).toBeInstanceOf(UnitError);
    expect(err!.kind).toBe('resources');
    expect(err!.message).toMatch(/Failed to load environment files/);
  });

  it('expands ${VAR} as one word and a bare $VAR split on whitespace, as systemd does', () => {
    writeFileSync(join(dir, 'api.service'), '[Service]\nExecStart=/usr/bin/openshift start master api --config=${CONFIG_FILE} $OPTIONS "${TWO}"\n');
    const spec = loadUnit(dir, 'api');
    expect(execArgv(spec, { CONFIG_FILE: '/etc/origin/master/master-config.yaml', OPTIONS: '--loglevel=2  --listen=x', TWO: 'a b' })).toEqual([
      '/usr/bin/openshift',
      'start',
      'master',
      'api',
      '--config=/etc/origin/master/master-config.yaml',
      '--loglevel=2',
      '--listen=x',
      'a b',
    ]);
    expect(splitWords(`a "b c" 'd e' f\\ g`)).toEqual(['a', 'b c', 'd e', 'f g']);
  });
});
