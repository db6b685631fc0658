import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inventorySchema } from '../../src/config/schema.js';
import { dnsNameInFiles, dnsNameInPeerUrls, environmentFileOf, expandDnsName, manifestCertPaths } from '../../src/platform/ocp4-certs.js';
import { platformOf } from '../../src/platform/index.js';
import { rebuiltChoice, type ReplaceHosts } from '../../src/runbook/rebuilt-host.js';
import { environmentLookLines, manifestLookLines, parseClueLook, pkiDirLookLines } from '../../src/worker/pki-look.js';
import { parsePkiLook, pkiFiles, pkiLookLines } from '../../src/worker/steps/cert-steps.js';

const DNS = 'etcd-1.clustername.devcluster.openshift.com';

/**
 * etcd-member.yaml as a 4.1–4.3 master runs it (machine-config-operator's
 * template): the discovery and certs init containers, the etcd-member
 * container whose script sources /run/etcd/environment and names the
 * certificates by ${ETCD_DNS_NAME}, the metrics proxy with its own pair.
 */
const MEMBER_YAML = `apiVersion: v1
kind: Pod
metadata:
  name: etcd-member
  namespace: openshift-etcd
  labels:
    k8s-app: etcd
spec:
  initContainers:
  - name: discovery
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:aaaa"
    command: ["/usr/bin/setup-etcd-environment"]
    args:
    - "run"
    - "--discovery-srv=clustername.devcluster.openshift.com"
    - "--output-file=/run/etcd/environment"
  - name: certs
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:cccc"
    command:
    - /bin/sh
    - -c
    - |
      #!/bin/sh
      set -euo pipefail

      source /run/etcd/environment

      [ -e /etc/ssl/etcd/system:etcd-server:\${ETCD_DNS_NAME}.crt -a \\
        -e /etc/ssl/etcd/system:etcd-server:\${ETCD_DNS_NAME}.key ] || \\
        kube-client-agent \\
          request \\
            --kubeconfig=/etc/kubernetes/kubeconfig \\
            --orgname=system:etcd-servers \\
            --assetsdir=/etc/ssl/etcd \\
            --dnsnames=localhost,etcd.kube-system.svc,etcd.kube-system.svc.cluster.local,etcd.openshift-etcd.svc,etcd.openshift-etcd.svc.cluster.local,\${ETCD_DNS_NAME} \\
            --commonname=system:etcd-server:\${ETCD_DNS_NAME} \\
            --ipaddrs=\${ETCD_IPV4_ADDRESS},127.0.0.1
  containers:
  - name: etcd-member
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:bbbb"
    command:
    - /bin/sh
    - -c
    - |
      #!/bin/sh
      set -euo pipefail

      source /run/etcd/environment

      exec etcd \\
        --initial-advertise-peer-urls=https://\${ETCD_IPV4_ADDRESS}:2380 \\
        --cert-file=/etc/ssl/etcd/system:etcd-server:\${ETCD_DNS_NAME}.crt \\
        --key-file=/etc/ssl/etcd/system:etcd-server:\${ETCD_DNS_NAME}.key \\
        --trusted-ca-file=/etc/ssl/etcd/ca.crt \\
        --client-cert-auth=true \\
        --peer-cert-file=/etc/ssl/etcd/system:etcd-peer:\${ETCD_DNS_NAME}.crt \\
        --peer-key-file=/etc/ssl/etcd/system:etcd-peer:\${ETCD_DNS_NAME}.key \\
        --peer-trusted-ca-file=/etc/ssl/etcd/ca.crt \\
        --peer-client-cert-auth=true \\
        --advertise-client-urls=https://\${ETCD_IPV4_ADDRESS}:2379 \\
        --listen-client-urls=https://0.0.0.0:2379 \\
        --listen-peer-urls=https://0.0.0.0:2380 \\
        --listen-metrics-urls=https://0.0.0.0:9978
    env:
    - name: ETCD_DATA_DIR
      value: "/var/lib/etcd"
    - name: ETCD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    volumeMounts:
    - name: discovery
      mountPath: /run/etcd/
    - name: certs
      mountPath: /etc/ssl/etcd/
  - name: etcd-metrics
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:bbbb"
    command:
    - /bin/sh
    - -c
    - |
      #!/bin/sh
      set -euo pipefail

      source /run/etcd/environment

      exec etcd grpc-proxy start \\
        --endpoints https://\${ETCD_DNS_NAME}:9978 \\
        --metrics-addr https://0.0.0.0:9979 \\
        --listen-addr 127.0.0.1:9977 \\
        --key /etc/ssl/etcd/system:etcd-peer:\${ETCD_DNS_NAME}.key \\
        --key-file /etc/ssl/etcd/system:etcd-metric:\${ETCD_DNS_NAME}.key \\
        --cert /etc/ssl/etcd/system:etcd-peer:\${ETCD_DNS_NAME}.crt \\
        --cert-file /etc/ssl/etcd/system:etcd-metric:\${ETCD_DNS_NAME}.crt \\
        --cacert /etc/ssl/etcd/ca.crt \\
        --trusted-ca-file /etc/ssl/etcd/metric-ca.crt
  hostNetwork: true
  priority: 2000000000
`;

const ssh = { user: 'core', keyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` };
const clusterOf = (manifestFile = 'etcd-member.yaml') =>
  inventorySchema.parse({
    clusters: [
      {
        name: 'prod',
        etcd: { endpoints: ['https://10.0.0.1:2379'] },
        platform: { kind: 'openshift4', manifestFile },
        members: ['m1', 'm2', 'm3'].map((name, i) => ({ name, host: `10.0.0.${i + 1}`, ssh })),
      },
    ],
  }).clusters[0]!;
const cluster = clusterOf();
const m3 = cluster.members[2]!;
const ocp4 = platformOf(cluster);

describe('OpenShift 4.1–4.3 certificate paths, from the manifest the kubelet runs', () => {
  it("reads them from the etcd-member container's flags, ${ETCD_DNS_NAME} left for the host's discovery output", () => {
    expect(manifestCertPaths(MEMBER_YAML, '/etc/ssl/etcd')).toEqual({
      caCert: '/etc/ssl/etcd/ca.crt',
      server: { cert: '/etc/ssl/etcd/system:etcd-server:${ETCD_DNS_NAME}.crt', key: '/etc/ssl/etcd/system:etcd-server:${ETCD_DNS_NAME}.key' },
      peer: { cert: '/etc/ssl/etcd/system:etcd-peer:${ETCD_DNS_NAME}.crt', key: '/etc/ssl/etcd/system:etcd-peer:${ETCD_DNS_NAME}.key' },
    });
    expect(environmentFileOf(MEMBER_YAML)).toBe('/run/etcd/environment');
    expect(environmentFileOf(null)).toBe('/run/etcd/environment');
    expect(expandDnsName('/etc/ssl/etcd/system:etcd-peer:${ETCD_DNS_NAME}.crt', DNS)).toBe(`/etc/ssl/etcd/system:etcd-peer:${DNS}.crt`);
    expect(expandDnsName('/etc/ssl/etcd/system:etcd-peer:$ETCD_DNS_NAME.crt', DNS)).toBe(`/etc/ssl/etcd/system:etcd-peer:${DNS}.crt`);
    expect(expandDnsName('/etc/ssl/etcd/${NODE_NAME}.crt', DNS)).toBeNull();
  });

  it('names each pair for the etcd DNS name in the discovery output, with the CN, O and SANs the signer gives', () => {
    const got = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: `ETCD_IPV4_ADDRESS=10.0.0.3\nETCD_DNS_NAME=${DNS}\n`, files: [], peerURLs: ['https://10.0.0.3:2380'] });
    if (!('pki' in got)) throw new Error(got.problem);
    expect(got.pki.caCert).toBe('/etc/ssl/etcd/ca.crt');
    expect(got.pki.certs.map((c) => [c.role, c.cert, c.key, c.subject.cn, c.subject.o])).toEqual([
      ['peer', `/etc/ssl/etcd/system:etcd-peer:${DNS}.crt`, `/etc/ssl/etcd/system:etcd-peer:${DNS}.key`, `system:etcd-peer:${DNS}`, 'system:etcd-peers'],
      ['server', `/etc/ssl/etcd/system:etcd-server:${DNS}.crt`, `/etc/ssl/etcd/system:etcd-server:${DNS}.key`, `system:etcd-server:${DNS}`, 'system:etcd-servers'],
      ['metric', `/etc/ssl/etcd/system:etcd-metric:${DNS}.crt`, `/etc/ssl/etcd/system:etcd-metric:${DNS}.key`, `system:etcd-metric:${DNS}`, 'system:etcd-metrics'],
    ]);
    // The metric pair is the etcd metric signer's, named by the metrics proxy's --cert-file/--key-file, for the server's names and the member's address.
    const metric = got.pki.certs.find((c) => c.role === 'metric')!;
    expect(metric.signedBy).toEqual({ name: 'metric', what: 'etcd metric CA', caCert: '/etc/ssl/etcd/metric-ca.crt', caKey: '/etc/ssl/etcd/metric-ca.key' });
    expect(metric.optional).toBe(true);
    expect(metric.sans).toEqual({ dns: got.pki.certs.find((c) => c.role === 'server')!.sans.dns, ips: ['10.0.0.3'] });
    expect(got.pki.certs.filter((c) => c.role !== 'metric').every((c) => c.signedBy === undefined)).toBe(true);
    for (const c of got.pki.certs) {
      expect(c.sans.dns[0]).toBe(DNS);
      expect(c.sans.ips).toContain('10.0.0.3');
      expect(c.cert).not.toMatch(/(^|\/)(peer|server)\.crt$/);
    }
  });

  it('without a discovery output, takes the DNS name from the member list peer URL (etcd-N.<domain>), else from the files on the host', () => {
    expect(dnsNameInPeerUrls(['https://10.0.0.3:2380'])).toBeNull();
    expect(dnsNameInPeerUrls([`https://${DNS}:2380`])).toBe(DNS);
    expect(dnsNameInFiles(['ca.crt', `system:etcd-peer:${DNS}.crt`, `system:etcd-peer:${DNS}.key`, `system:etcd-metric:${DNS}.crt`])).toBe(DNS);
    // Two masters' files in one dir: which one is this member's cannot be told.
    expect(dnsNameInFiles([`system:etcd-peer:${DNS}.crt`, 'system:etcd-peer:etcd-2.x.com.crt'])).toBeNull();

    const byUrl = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: null, files: [], peerURLs: [`https://${DNS}:2380`] });
    expect('pki' in byUrl && byUrl.pki.certs[0]!.cert).toBe(`/etc/ssl/etcd/system:etcd-peer:${DNS}.crt`);
    // The inventory's word comes first: a rebuilt master has no discovery output until its pod runs.
    const stated = platformOf({ ...cluster, members: cluster.members.map((m) => (m.name === 'm3' ? { ...m, etcdDnsName: 'etcd-2.other.example.com' } : m)) });
    const byInventory = stated.pkiOnHost!({ ...m3, etcdDnsName: 'etcd-2.other.example.com' }, { manifest: MEMBER_YAML, environment: `ETCD_DNS_NAME=${DNS}`, files: [], peerURLs: [] });
    expect('pki' in byInventory && byInventory.pki.certs[0]!.cert).toBe('/etc/ssl/etcd/system:etcd-peer:etcd-2.other.example.com.crt');
    const byFile = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: null, files: [`system:etcd-server:${DNS}.crt`], peerURLs: ['https://10.0.0.3:2380'] });
    expect('pki' in byFile && byFile.pki.certs[1]!.cert).toBe(`/etc/ssl/etcd/system:etcd-server:${DNS}.crt`);
  });

  it('says why when the DNS name cannot be learned, rather than guessing peer.crt', () => {
    const got = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: null, files: ['ca.crt'], peerURLs: ['https://10.0.0.3:2380'] });
    expect('problem' in got && got.problem).toBe(
      "m3's etcd DNS name (ETCD_DNS_NAME, which its manifest's certificate paths are named by) could not be learned: no etcdDnsName for it in the inventory, no ETCD_DNS_NAME in /run/etcd/environment on its host, no DNS name in its peer URL (https://10.0.0.3:2380), no single system:etcd-peer:<name>.crt in /etc/ssl/etcd",
    );
  });

  it('takes no etcd DNS name with shell or SAN characters from the member list, and refuses a discovery output that sets it to something else than a plain DNS name', () => {
    // Hostile peer URLs: hosts a URL parser accepts that are no DNS name (they would land in file paths, -subj and the SAN line).
    for (const host of ['x$(id);y', "a'b", 'a*b!~&c', 'a,b.example.com', '..']) expect(dnsNameInPeerUrls([`https://${host}:2380`]), host).toBeNull();
    expect(dnsNameInPeerUrls(['https://x$(id);y:2380', `https://${DNS}:2380`])).toBe(DNS);
    const byUrl = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: null, files: [], peerURLs: ['https://etcd-1.x$(touch${IFS}pwned).com:2380'] });
    expect('problem' in byUrl && byUrl.problem).toMatch(/^m3's etcd DNS name \(ETCD_DNS_NAME, which its manifest's certificate paths are named by\) could not be learned/);
    // The discovery output, tampered with: the script would expand something the bot cannot tell, so no guess from the peer URL is made.
    for (const env of ['ETCD_DNS_NAME=x;rm -rf /', 'ETCD_DNS_NAME=$(hostname)', `ETCD_DNS_NAME=${DNS}\nETCD_DNS_NAME="\`id\`"`, 'export ETCD_DNS_NAME=..']) {
      const got = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: env, files: [], peerURLs: [`https://${DNS}:2380`] });
      expect('problem' in got && got.problem, env).toMatch(/^m3's discovery output \(\/run\/etcd\/environment on its host\) sets ETCD_DNS_NAME to ".*", not a plain DNS name: where its manifest's certificates are cannot be told from here\. Set etcdDnsName for m3 in the inventory/);
    }
    // The last assignment is the one the script keeps; quotes are fine; the inventory's word still comes first.
    const last = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: `ETCD_DNS_NAME=etcd-9.x.com\nexport ETCD_DNS_NAME="${DNS}"`, files: [], peerURLs: [] });
    expect('pki' in last && last.pki.certs[0]!.cert).toBe(`/etc/ssl/etcd/system:etcd-peer:${DNS}.crt`);
    const stated = ocp4.pkiOnHost!({ ...m3, etcdDnsName: DNS }, { manifest: MEMBER_YAML, environment: 'ETCD_DNS_NAME=$(hostname)', files: [], peerURLs: [] });
    expect('pki' in stated && stated.pki.certs[0]!.cert).toBe(`/etc/ssl/etcd/system:etcd-peer:${DNS}.crt`);
    // A name in the pki dir's files that is no DNS name is not taken either.
    expect(dnsNameInFiles(['system:etcd-peer:...crt'])).toBeNull();
  });

  it("a peer's manifest adapted to a member with another pki dir names its own dir, ${ETCD_DNS_NAME} kept for its script to expand", () => {
    const side = (name: string, host: string, pkiDir: string) => ({ name, host, dataDir: '/var/lib/etcd', pkiDir });
    const moved = ocp4.adaptConfig(MEMBER_YAML, side('m1', '10.0.0.1', '/etc/ssl/etcd'), side('m3', '10.0.0.3', '/srv/m3/pki'));
    expect(ocp4.flag(moved, 'peer-cert-file')).toBe('/srv/m3/pki/system:etcd-peer:${ETCD_DNS_NAME}.crt');
    expect(ocp4.flag(moved, 'key-file')).toBe('/srv/m3/pki/system:etcd-server:${ETCD_DNS_NAME}.key');
    expect(moved).toContain('--peer-key-file=/srv/m3/pki/system:etcd-peer:${ETCD_DNS_NAME}.key \\\n');
    expect(ocp4.flag(moved, 'trusted-ca-file')).toBe('/srv/m3/pki/ca.crt');
    // The metrics proxy's files move with etcd's (the member's metric pair is issued in its own pki dir); the certs init container stays as it was.
    expect(moved).toContain('--cert-file /srv/m3/pki/system:etcd-metric:${ETCD_DNS_NAME}.crt');
    expect(moved).toContain('--trusted-ca-file /srv/m3/pki/metric-ca.crt');
    expect(moved).not.toContain('--key-file /etc/ssl/etcd/');
    expect(moved).toContain('--assetsdir=/etc/ssl/etcd');
    const learned = ocp4.pkiOnHost!(m3, { manifest: moved, environment: `ETCD_DNS_NAME=${DNS}`, files: [], peerURLs: [] });
    expect('pki' in learned && learned.pki.certs.map((c) => c.cert)).toEqual([`/srv/m3/pki/system:etcd-peer:${DNS}.crt`, `/srv/m3/pki/system:etcd-server:${DNS}.crt`, `/srv/m3/pki/system:etcd-metric:${DNS}.crt`]);
    // The same dir on both (every real master's /etc/ssl/etcd): the certificate flags as the peer has them.
    const same = ocp4.adaptConfig(MEMBER_YAML, side('m1', '10.0.0.1', '/etc/ssl/etcd'), side('m3', '10.0.0.3', '/etc/ssl/etcd'));
    expect(ocp4.flag(same, 'peer-cert-file')).toBe('/etc/ssl/etcd/system:etcd-peer:${ETCD_DNS_NAME}.crt');
    expect(same).toContain('--cert-file=/etc/ssl/etcd/system:etcd-server:${ETCD_DNS_NAME}.crt \\\n');
  });

  it("leaves 4.4+'s operator-written masters to their own layout", () => {
    expect(platformOf(clusterOf('etcd-pod.yaml')).pkiOnHost).toBeUndefined();
  });
});

describe('the look on a host, with names that hold ":"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medic-ocp4-certs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the manifest, the pki files and the discovery output, and reads a system:etcd-peer:<dns> pair', () => {
    const pki = join(dir, 'etc/ssl/etcd');
    mkdirSync(pki, { recursive: true });
    mkdirSync(join(dir, 'run/etcd'), { recursive: true });
    writeFileSync(join(dir, 'etcd-member.yaml'), MEMBER_YAML);
    writeFileSync(join(dir, 'run/etcd/environment'), `ETCD_IPV4_ADDRESS=10.0.0.3\nETCD_DNS_NAME=${DNS}`);
    const cert = join(pki, `system:etcd-peer:${DNS}.crt`);
    const key = join(pki, `system:etcd-peer:${DNS}.key`);
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', `/O=system:etcd-peers/CN=system:etcd-peer:${DNS}`, '-days', '1'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    writeFileSync(join(pki, "it's odd.crt"), '');

    const bash = (lines: string[]) => spawnSync('bash', ['-c', ['set -uo pipefail', ...lines].join('\n')], { encoding: 'utf8', cwd: dir });
    const first = bash([...manifestLookLines(join(dir, 'etcd-member.yaml')), ...pkiDirLookLines(pki), ...environmentLookLines(join(dir, 'run/etcd/environment'))]);
    expect(first.status, first.stderr).toBe(0);
    const clues = parseClueLook(first.stdout);
    expect(clues.manifest).toBe(MEMBER_YAML);
    expect(clues.files.sort()).toEqual(["it's odd.crt", `system:etcd-peer:${DNS}.crt`, `system:etcd-peer:${DNS}.key`]);
    expect(clues.environment).toBe(`ETCD_IPV4_ADDRESS=10.0.0.3\nETCD_DNS_NAME=${DNS}`);

    const learned = ocp4.pkiOnHost!(m3, { ...clues, peerURLs: [] });
    if (!('pki' in learned)) throw new Error(learned.problem);
    const peer = learned.pki.certs.find((c) => c.role === 'peer')!;
    const look = bash(pkiLookLines(pkiFiles({ caCert: join(pki, 'ca.crt') }, [{ ...peer, cert, key }])));
    const files = parsePkiLook(look.stdout);
    expect(files.get('cert:peer')).toContain('-----BEGIN CERTIFICATE-----');
    expect(files.get('key:peer')).toContain('-----BEGIN PUBLIC KEY-----');
  });
});

describe('a replace on a 4.1–4.3 master judges and issues the certificates where its manifest names them', () => {
  const CA = `${'AB:'.repeat(31)}CD`;
  const peer = (name: string, hasCaKey: boolean) => ({ name, hasConfig: true, hasCaCert: true, hasCaKey, caSha256: CA, roles: [] });
  const learned = ocp4.pkiOnHost!(m3, { manifest: MEMBER_YAML, environment: `ETCD_DNS_NAME=${DNS}`, files: [], peerURLs: [] });
  if (!('pki' in learned)) throw new Error(learned.problem);
  const certs = learned.pki.certs;

  it('issues them under the system:etcd-*:<dns> names, signed where the CA key was put', () => {
    const hosts: ReplaceHosts = { target: { name: 'm3', hasConfig: false, certs, pki: { ca: null, certs: { peer: `no ${certs[0]!.cert}`, server: `no ${certs[1]!.cert}` }, caSha256: CA } }, peers: [peer('m1', true), peer('m2', false)] };
    const r = rebuiltChoice(cluster, m3, hosts, ['m1', 'm2']);
    if (!r.ok) throw new Error(r.reason);
    expect(r.choice.certs?.signer.name).toBe('m1');
    expect(r.choice.certs?.certs.map((c) => c.cert)).toEqual([`/etc/ssl/etcd/system:etcd-peer:${DNS}.crt`, `/etc/ssl/etcd/system:etcd-server:${DNS}.crt`]);
  });

  it('keeps the certificates a master has under its real names: nothing to issue, so no CA key is needed', () => {
    const hosts: ReplaceHosts = { target: { name: 'm3', hasConfig: true, certs, pki: { ca: null, certs: { peer: null, server: null }, caSha256: CA } }, peers: [peer('m1', false), peer('m2', false)] };
    expect(rebuiltChoice(cluster, m3, hosts, ['m1', 'm2'])).toEqual({ ok: true, choice: {} });
  });

  it('refuses, saying what to put where, when the DNS name that names them is unknown', () => {
    const unknown = 'm3\'s etcd DNS name could not be learned';
    const hosts: ReplaceHosts = { target: { name: 'm3', hasConfig: false, certsUnknown: unknown, pki: { ca: null, certs: { peer: unknown, server: unknown }, caSha256: CA } }, peers: [peer('m1', true), peer('m2', true)] };
    const r = rebuiltChoice(cluster, m3, hosts, ['m1', 'm2']);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(`${unknown}. Set etcdDnsName for m3 in the inventory (its etcd-N DNS name), or put ETCD_DNS_NAME=<that name> in that file`);
    expect(!r.ok && r.reason).toContain('Nothing was changed.');
  });
});
