import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inventorySchema } from '../../src/config/schema.js';
import { memberPlace, platformOf } from '../../src/platform/index.js';
import { scriptFlag, withScriptFlag } from '../../src/platform/pod-script.js';
import { lookScript } from '../../src/worker/host-readiness.js';

const dir = mkdtempSync(join(tmpdir(), 'medic-ocp4-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const member = (extra: Record<string, unknown> = {}) => ({ name: 'm1', host: '10.0.0.1', ssh: { user: 'root', keyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` }, ...extra });
const clusterWith = (platform: Record<string, unknown>, m: Record<string, unknown> = {}) =>
  inventorySchema.parse({ clusters: [{ name: 'c', etcd: { endpoints: ['https://10.0.0.1:2379'] }, platform, members: [member(m)] }] }).clusters[0]!;
const ocp4 = platformOf(clusterWith({ kind: 'openshift4' }));

/** etcd-member.yaml as OpenShift 4.1–4.3 lays it out (machine-config-operator's template, addresses filled in). */
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
    args:
    - "run"
    - "--discovery-srv=clustername.devcluster.openshift.com"
    - "--output-file=/run/etcd/environment"
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
        --initial-cluster-token "etcd-cluster-1" \\
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
    - name: ETCD_INITIAL_CLUSTER_STATE
      value: "new"
    ports:
    - name: peer
      containerPort: 2380
      protocol: TCP
    resources:
      requests:
        memory: 600Mi   # as shipped
        cpu: 300m
    volumeMounts:
    - name: discovery
      mountPath: /run/etcd/
  - name: etcd-metrics
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:bbbb"
    command:
    - etcd
    - grpc-proxy
    - start
    - --endpoints=https://\${ETCD_DNS_NAME}:9978
  hostNetwork: true
  priority: 2000000000
`;

/** Lines of `b` that are not in `a` at all (a line-set difference, enough to show which lines a change touched). */
function changedLines(a: string, b: string): { removed: string[]; added: string[] } {
  const la = a.split('\n');
  const lb = b.split('\n');
  return { removed: la.filter((l) => !lb.includes(l)), added: lb.filter((l) => !la.includes(l)) };
}

/** Runs the manifest's etcd container as the kubelet would (its script through /bin/sh, its env), with an `etcd` that prints what it got. */
function runContainer(manifest: string): { args: string[]; env: Record<string, string>; stderr: string } {
  const bin = mkdtempSync(join(dir, 'bin-'));
  writeFileSync(join(bin, 'etcd'), `#!/bin/sh\nfor a in "$@"; do printf 'ARG %s\\n' "$a"; done\nenv | grep '^ETCD_' | sed 's/^/ENV /'\n`);
  chmodSync(join(bin, 'etcd'), 0o755);
  mkdirSync(join(bin, 'run'), { recursive: true });
  writeFileSync(join(bin, 'environment'), 'ETCD_IPV4_ADDRESS=10.0.0.1\nETCD_DNS_NAME=etcd-0.example.com\n');
  const doc = parseYaml(manifest) as { spec: { containers: { name: string; command: string[]; args?: string[]; env?: { name: string; value?: string }[] }[] } };
  const c = doc.spec.containers.find((x) => x.name === 'etcd-member' || x.name === 'etcd')!;
  // dash has neither `source` nor pipefail: the script runs under bash, which RHCOS's /bin/sh is.
  const script = [...c.command, ...(c.args ?? [])][2]!.replace('source /run/etcd/environment', `. ${join(bin, 'environment')}`);
  const env: Record<string, string> = { PATH: `${bin}:/usr/bin:/bin` };
  for (const e of c.env ?? []) env[e.name] = e.value ?? 'from-pod';
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env });
  const out = r.stdout.split('\n');
  return {
    args: out.filter((l) => l.startsWith('ARG ')).map((l) => l.slice(4)),
    env: Object.fromEntries(out.filter((l) => l.startsWith('ENV ')).map((l) => l.slice(4).split(/=(.*)/s).slice(0, 2) as [string, string])),
    stderr: r.stderr,
  };
}

describe('openshift4 platform: where things are', () => {
  it('defaults to etcd-member.yaml in /etc/kubernetes/manifests, /var/lib/etcd and /etc/ssl/etcd; a member overrides its manifest file (etcd-pod.yaml on 4.4+)', () => {
    const c = clusterWith({ kind: 'openshift4' });
    expect(memberPlace(c, c.members[0]!, 'r-1')).toMatchObject({ config: '/etc/kubernetes/manifests/etcd-member.yaml', configAside: '/etc/kubernetes/etcd-medic-aside/etcd-member.yaml.r-1', dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' });
    const c44 = clusterWith({ kind: 'openshift4', manifestFile: 'etcd-pod.yaml' }, { dataDir: '/srv/etcd' });
    expect(platformOf(c44).paths(c44.members[0]!)).toMatchObject({ config: '/etc/kubernetes/manifests/etcd-pod.yaml', dataDir: '/srv/etcd' });
    const c2 = clusterWith({ kind: 'openshift4' }, { manifestFile: 'etcd-pod.yaml' });
    expect(platformOf(c2).paths(c2.members[0]!).config).toBe('/etc/kubernetes/manifests/etcd-pod.yaml');
    expect(platformOf(c).backupPaths(c.members[0]!)).toEqual(['/etc/kubernetes/manifests/etcd-member.yaml', '/etc/ssl/etcd']);
  });

  it('refuses a manifest file name that is a path, and manifestFile on a kubeadm cluster', () => {
    expect(() => clusterWith({ kind: 'openshift4', manifestFile: '../etcd.yaml' })).toThrow(/etcd-member\.yaml/);
    expect(() => clusterWith({ kind: 'kubeadm' }, { manifestFile: 'etcd-pod.yaml' })).toThrow(/has no meaning on a kubeadm cluster/);
  });
});

describe('openshift4 platform: flags on the script and in env', () => {
  it('reads a flag from the exec etcd line (quoted, separate value), from env, and not one set from the pod', () => {
    expect(ocp4.flag(MEMBER_YAML, 'listen-client-urls')).toBe('https://0.0.0.0:2379');
    expect(ocp4.flag(MEMBER_YAML, 'initial-cluster-token')).toBe('etcd-cluster-1');
    expect(ocp4.flag(MEMBER_YAML, 'client-cert-auth')).toBe('true');
    expect(ocp4.flag(MEMBER_YAML, 'initial-cluster-state')).toBe('new');
    expect(ocp4.flag(MEMBER_YAML, 'data-dir')).toBe('/var/lib/etcd');
    // Written as the script has it: what etcd gets is known only once the script ran.
    expect(ocp4.flag(MEMBER_YAML, 'advertise-client-urls')).toBe('https://${ETCD_IPV4_ADDRESS}:2379');
    expect(ocp4.flag(MEMBER_YAML, 'name')).toBeUndefined();
    expect(ocp4.flag(MEMBER_YAML, 'force-new-cluster')).toBeUndefined();
    // The metrics container's flags are not etcd's.
    expect(ocp4.flag(MEMBER_YAML, 'endpoints')).toBeUndefined();
  });

  it('writes each flag where it is: on the script line, in its env entry (valueFrom replaced), new ones into env; every other line byte for byte', () => {
    const out = ocp4.withFlags(MEMBER_YAML, { 'initial-cluster-token': 'lab-r-1234abcd', 'initial-cluster-state': 'existing', name: 'etcd-member-ip-10-0-0-1', 'initial-cluster': 'a=https://10.0.0.1:2380,b=https://10.0.0.2:2380', 'force-new-cluster': null });
    expect(changedLines(MEMBER_YAML, out)).toEqual({
      removed: ['        --initial-cluster-token "etcd-cluster-1" \\', '      valueFrom:', '        fieldRef:', '          fieldPath: metadata.name', '      value: "new"'],
      added: ['        --initial-cluster-token=lab-r-1234abcd \\', '      value: "etcd-member-ip-10-0-0-1"', '      value: "existing"', '    - name: ETCD_INITIAL_CLUSTER', '      value: "a=https://10.0.0.1:2380,b=https://10.0.0.2:2380"'],
    });
    for (const [f, v] of Object.entries({ 'initial-cluster-token': 'lab-r-1234abcd', 'initial-cluster-state': 'existing', name: 'etcd-member-ip-10-0-0-1', 'initial-cluster': 'a=https://10.0.0.1:2380,b=https://10.0.0.2:2380' })) expect(ocp4.flag(out, f)).toBe(v);
    // What etcd gets when the kubelet runs it.
    const run = runContainer(out);
    expect(run.args).toContain('--initial-cluster-token=lab-r-1234abcd');
    expect(run.args).toContain('--initial-advertise-peer-urls=https://10.0.0.1:2380');
    expect(run.args.at(-1)).toBe('--listen-metrics-urls=https://0.0.0.0:9978');
    expect(run.env).toMatchObject({ ETCD_INITIAL_CLUSTER_STATE: 'existing', ETCD_NAME: 'etcd-member-ip-10-0-0-1', ETCD_INITIAL_CLUSTER: 'a=https://10.0.0.1:2380,b=https://10.0.0.2:2380', ETCD_DATA_DIR: '/var/lib/etcd' });
  });

  it('puts --force-new-cluster in and takes it out again, back to the very bytes it started from', () => {
    const forced = ocp4.withFlags(MEMBER_YAML, { 'force-new-cluster': 'true' });
    expect(ocp4.flag(forced, 'force-new-cluster')).toBe('true');
    expect(runContainer(forced).env.ETCD_FORCE_NEW_CLUSTER).toBe('true');
    expect(ocp4.withFlags(forced, { 'force-new-cluster': null })).toBe(MEMBER_YAML);
  });

  it('takes a flag off the script: a line of its own, the last line of the command (the line before ends it), a word among others', () => {
    const withLast = ocp4.withFlags(MEMBER_YAML, { 'listen-metrics-urls': null });
    expect(withLast).toContain('--listen-peer-urls=https://0.0.0.0:2380\n    env:');
    expect(runContainer(withLast).args.at(-1)).toBe('--listen-peer-urls=https://0.0.0.0:2380');
    const mid = ocp4.withFlags(MEMBER_YAML, { 'client-cert-auth': null });
    expect(changedLines(MEMBER_YAML, mid)).toEqual({ removed: ['        --client-cert-auth=true \\'], added: [] });
    expect(runContainer(mid).args).not.toContain('--client-cert-auth=true');
    const oneLine = 'exec etcd --name=a --force-new-cluster --data-dir=/d # old\n';
    expect(withScriptFlag(oneLine, 'force-new-cluster', null)).toBe('exec etcd --name=a --data-dir=/d # old\n');
    expect(scriptFlag(oneLine, 'data-dir')).toBe('/d');
  });

  it('a flag set on the script and in env: the script flag is read (etcd 3.3 takes it; 3.4 refuses both), written there, and the env entry goes', () => {
    const both = MEMBER_YAML.replace('    - name: ETCD_DATA_DIR\n', '    - name: ETCD_INITIAL_CLUSTER_TOKEN\n      value: "from-env"\n    - name: ETCD_DATA_DIR\n');
    expect(ocp4.flag(both, 'initial-cluster-token')).toBe('etcd-cluster-1');
    const out = ocp4.withFlags(both, { 'initial-cluster-token': 't2' });
    expect(out).not.toContain('ETCD_INITIAL_CLUSTER_TOKEN');
    expect(changedLines(MEMBER_YAML, out)).toEqual({ removed: ['        --initial-cluster-token "etcd-cluster-1" \\'], added: ['        --initial-cluster-token=t2 \\'] });
    // Taken out: out of both places.
    expect(ocp4.flag(ocp4.withFlags(both, { 'initial-cluster-token': null }), 'initial-cluster-token')).toBeUndefined();
  });

  it('a flag given twice in env: the last counts (as the kubelet does), the first is written and the others go', () => {
    const twice = MEMBER_YAML.replace('    ports:\n', '    - name: ETCD_INITIAL_CLUSTER_STATE\n      value: "existing"\n    ports:\n');
    expect(ocp4.flag(twice, 'initial-cluster-state')).toBe('existing');
    const out = ocp4.withFlags(twice, { 'initial-cluster-state': 'new' });
    expect(out).toBe(MEMBER_YAML);
  });

  it('writes hostile values so that etcd gets them as written and the shell runs nothing of them', () => {
    const marker = join(dir, 'pwned');
    for (const v of [`x'; touch ${marker}; echo '`, `$(touch ${marker})`, `\`touch ${marker}\``, 'a b\tc', '"quoted" \\ back\\', '--name=evil', '# not a comment', 'ünï©ødé=https://x:2380']) {
      const out = ocp4.withFlags(MEMBER_YAML, { 'initial-cluster-token': v, 'initial-cluster': v });
      expect(ocp4.flag(out, 'initial-cluster-token')).toBe(v);
      expect(ocp4.flag(out, 'initial-cluster')).toBe(v);
      const run = runContainer(out);
      expect(run.args).toContain(`--initial-cluster-token=${v}`);
      expect(run.env.ETCD_INITIAL_CLUSTER).toBe(v);
      expect(run.args.at(-1)).toBe('--listen-metrics-urls=https://0.0.0.0:9978');
      // Nothing but the token line changed on the script.
      expect(changedLines(MEMBER_YAML, out).removed).toEqual(['        --initial-cluster-token "etcd-cluster-1" \\']);
    }
    expect(() => readFileSync(marker)).toThrow();
  });

  it('refuses what cannot go into the script as written: line breaks, NUL, control characters', () => {
    for (const v of ['a\nb', 'a\rb', 'a\0b', 'a\u2028b', 'a\u001bb']) {
      expect(ocp4.flagValueProblem(v)).toMatch(/line break|control character/);
      expect(() => ocp4.withFlags(MEMBER_YAML, { 'initial-cluster': v })).toThrow(/refusing a value/);
    }
    expect(ocp4.flagValueProblem('m1=https://10.0.0.1:2380')).toBeNull();
    expect(ocp4.flagValueProblem("it's")).toBeNull();
  });

  it('refuses a manifest it cannot read surely: no exec etcd line, two of them, a script that sets the variable itself', () => {
    const kubeadmLike = 'spec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n    - --name=m1\n';
    expect(() => ocp4.flag(kubeadmLike, 'name')).toThrow(/no container that runs etcd from a \/bin\/sh -c script/);
    const two = MEMBER_YAML.replace('      source /run/etcd/environment\n', '      if [ -e /x ]; then\n        exec etcd --force-new-cluster\n      fi\n');
    expect(() => ocp4.flag(two, 'name')).toThrow(/runs etcd on 2 lines/);
    const assigns = MEMBER_YAML.replace('      source /run/etcd/environment\n', '      export ETCD_INITIAL_CLUSTER=a=https://x:2380\n');
    expect(() => ocp4.withFlags(assigns, { 'initial-cluster': 'b=https://y:2380' })).toThrow(/sets ETCD_INITIAL_CLUSTER itself/);
  });

  it('edits the 4.4+ shape too: command and args split, no env list yet, a double-quoted script', () => {
    const pod44 = `apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: openshift-etcd
spec:
  containers:
  - name: etcdctl
    command: ["/bin/bash", "-c", "trap TERM INT; sleep infinity & wait"]
  - name: etcd
    image: quay.io/etcd
    command:
      - /bin/sh
      - -c
    args:
      - |
        #!/bin/sh
        set -euo pipefail
        exec etcd \\
          --logger=zap \\
          --initial-cluster-state=existing \\
          --data-dir=/var/lib/etcd
    ports:
      - containerPort: 2380
`;
    const out = ocp4.withFlags(pod44, { 'force-new-cluster': 'true', 'initial-cluster-state': 'new' });
    expect(changedLines(pod44, out)).toEqual({ removed: ['          --initial-cluster-state=existing \\'], added: ['    env:', '    - name: ETCD_FORCE_NEW_CLUSTER', '      value: "true"', '          --initial-cluster-state=new \\'] });
    expect(runContainer(out).env.ETCD_FORCE_NEW_CLUSTER).toBe('true');
    const back = ocp4.withFlags(out, { 'force-new-cluster': null });
    expect(ocp4.flag(back, 'force-new-cluster')).toBeUndefined();
    const quoted = 'spec:\n  containers:\n  - name: etcd\n    command: ["/bin/sh", "-c", "exec etcd --name=a --initial-cluster=a=https://x:2380"]\n    env: []\n';
    const q = ocp4.withFlags(quoted, { 'initial-cluster': 'a=https://y:2380', 'initial-cluster-state': 'existing' });
    expect(q.split('\n')[0]).toBe('spec:');
    expect(ocp4.flag(q, 'initial-cluster')).toBe('a=https://y:2380');
    expect(ocp4.flag(q, 'initial-cluster-state')).toBe('existing');
  });
});

/** Runs the lines as a step does: in bash, under `set -euo pipefail`. */
function runLines(lines: string[]) {
  return spawnSync('bash', ['-c', `set -euo pipefail\n${lines.join('\n')}`], { encoding: 'utf8' });
}

/** Runs layout lines as the host look does (src/worker/host-readiness.ts): plain bash, no pipefail; its layout lines only. */
function lookLayout(lines: string[]): string {
  const r = spawnSync('bash', ['-c', lookScript([], lines)], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.split('\n').filter((l) => l.startsWith('layout:')).map((l) => `${l}\n`).join('');
}

describe('openshift4 platform: the other control-plane pods, and the layout look', () => {
  const hostWith = (files: Record<string, string>) => {
    const root = mkdtempSync(join(dir, 'host-'));
    const manifests = join(root, 'etc/kubernetes/manifests');
    mkdirSync(manifests, { recursive: true });
    mkdirSync(join(root, 'var/lib'), { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(join(manifests, f), text);
    const c = clusterWith({ kind: 'openshift4' }, { manifestsDir: manifests, dataDir: join(root, 'var/lib/etcd') });
    return { root, manifests, c, m: c.members[0]!, p: platformOf(c) };
  };

  it('stops kube-scheduler, kube-controller-manager and kube-apiserver by moving their manifests aside under the run, and puts back only what this run moved', () => {
    const { manifests, m, p, root } = hostWith({ 'kube-apiserver-pod.yaml': 'api', 'kube-scheduler-pod.yaml': 'sched', 'etcd-member.yaml': MEMBER_YAML });
    const place = p.apiserverPlace(m, 'r-1');
    expect(p.apiserverText(place, 'stop')).toBe(`mv ${manifests}/kube-scheduler-pod.yaml ${root}/etc/kubernetes/etcd-medic-aside/kube-scheduler-pod.yaml.r-1; mv ${manifests}/kube-controller-manager-pod.yaml ${root}/etc/kubernetes/etcd-medic-aside/kube-controller-manager-pod.yaml.r-1; mv ${manifests}/kube-apiserver-pod.yaml ${root}/etc/kubernetes/etcd-medic-aside/kube-apiserver-pod.yaml.r-1 (those present)`);
    const stop = runLines(p.apiserverLines(place, 'stop'));
    expect(stop.status).toBe(0);
    expect(stop.stdout).toContain(`no ${manifests}/kube-controller-manager-pod.yaml here`);
    expect(readdirSorted(manifests)).toEqual(['etcd-member.yaml']);
    // Run again (a retried step): nothing moves twice.
    expect(runLines(p.apiserverLines(place, 'stop')).stdout).toContain('already stopped');
    // The kube-apiserver manifest put back by hand meanwhile stays; its copy aside is not written over it.
    writeFileSync(join(manifests, 'kube-apiserver-pod.yaml'), 'api by hand');
    const start = runLines(p.apiserverLines(place, 'start'));
    expect(start.status).toBe(0);
    expect(readFileSync(join(manifests, 'kube-scheduler-pod.yaml'), 'utf8')).toBe('sched');
    expect(readFileSync(join(manifests, 'kube-apiserver-pod.yaml'), 'utf8')).toBe('api by hand');
    expect(start.stdout).toContain('kube-controller-manager-pod.yaml was not moved aside by this run');
    expect(readdirSorted(manifests)).toEqual(['etcd-member.yaml', 'kube-apiserver-pod.yaml', 'kube-scheduler-pod.yaml']);
    // A stop that would write over an earlier copy refuses.
    const again = runLines(p.apiserverLines(place, 'stop'));
    expect(again.status).toBe(3);
    expect(again.stderr).toContain('refusing to overwrite');
  });

  it('the layout look: a host laid out as OpenShift 4 passes; no manifests dir, another etcd manifest, a manifest without exec etcd do not', () => {
    const ok = hostWith({ 'etcd-member.yaml': MEMBER_YAML });
    expect(lookLayout(ok.p.layoutLines(ok.m))).toBe('');
    expect(runLines(ok.p.layoutLines(ok.m)).stdout).toBe('');
    // A rebuilt master with no etcd manifest at all: the replace builds one from a peer's, so it is not refused here.
    const bare = hostWith({});
    expect(lookLayout(bare.p.layoutLines(bare.m))).toBe('');
    const kubeadm = hostWith({ 'etcd.yaml': 'spec: {}\n' });
    expect(lookLayout(kubeadm.p.layoutLines(kubeadm.m))).toBe(`layout:${kubeadm.manifests} holds etcd.yaml, not etcd-member.yaml (the inventory's manifestFile): another kind or version of master\n`);
    const v44 = hostWith({ 'etcd-pod.yaml': MEMBER_YAML });
    expect(lookLayout(v44.p.layoutLines(v44.m))).toContain('holds etcd-pod.yaml, not etcd-member.yaml');
    const noScript = hostWith({ 'etcd-member.yaml': 'spec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n    - --name=m1\n' });
    expect(lookLayout(noScript.p.layoutLines(noScript.m))).toContain('has no exec etcd line');
    const c = clusterWith({ kind: 'openshift4' }, { manifestsDir: join(dir, 'nowhere/manifests'), dataDir: join(dir, 'nowhere/etcd') });
    const out = lookLayout(platformOf(c).layoutLines(c.members[0]!));
    expect(out).toContain("(the kubelet's static pod directory): it does not look like an OpenShift 4 master");
    expect(out).toContain('the parent directory of the data dir');
  });
});

function readdirSorted(d: string): string[] {
  return spawnSync('ls', [d], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort();
}

describe('openshift4 platform: a 4.4+ script that discovers its own initial cluster', () => {
  it('is refused by the layout look, naming the variable, before a plan could remove a member it then cannot start', () => {
    const root = mkdtempSync(join(dir, 'host44-'));
    const manifests = join(root, 'etc/kubernetes/manifests');
    mkdirSync(manifests, { recursive: true });
    const discovering = MEMBER_YAML.replace('      source /run/etcd/environment\n', '      ETCD_INITIAL_CLUSTER=$(discover-etcd-initial-cluster \\\n        --data-dir=/var/lib/etcd)\n      export ETCD_INITIAL_CLUSTER\n');
    writeFileSync(join(manifests, 'etcd-member.yaml'), discovering);
    const c = clusterWith({ kind: 'openshift4' }, { manifestsDir: manifests, dataDir: join(root, 'etcd') });
    expect(lookLayout(platformOf(c).layoutLines(c.members[0]!))).toBe(`layout:the etcd script of ${manifests}/etcd-member.yaml sets ETCD_INITIAL_CLUSTER itself (as 4.4+ discovers its initial cluster): the bot cannot set that flag there\n`);
    expect(() => ocp4.withFlags(discovering, { 'initial-cluster': 'a=https://x:2380' })).toThrow(/sets ETCD_INITIAL_CLUSTER itself/);
    // Its flags are still read where they are; force-new-cluster alone could still be written.
    expect(ocp4.flag(discovering, 'listen-client-urls')).toBe('https://0.0.0.0:2379');
  });
});

describe("the openshift4 profile: a rebuilt master's manifest from a peer's", () => {
  it("takes the peer's etcd-member.yaml with this member's name and data dir; what the discovery variables name stays", () => {
    const from = { name: 'm1', host: '10.0.0.1', dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' };
    const to = { name: 'm3', host: '10.0.0.3', dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' };
    const adapted = ocp4.adaptConfig(MEMBER_YAML, from, to);
    expect(ocp4.flag(adapted, 'name')).toBe('m3');
    expect(ocp4.flag(adapted, 'data-dir')).toBe('/var/lib/etcd');
    // Each host's own through the discovery file: kept as the peer wrote them.
    expect(ocp4.flag(adapted, 'initial-advertise-peer-urls')).toBe('https://${ETCD_IPV4_ADDRESS}:2380');
    // Left as the peer wrote them, byte for byte: rewritten, they would be quoted and the shell would not expand them.
    expect(adapted).toContain('--initial-advertise-peer-urls=https://${ETCD_IPV4_ADDRESS}:2380 \\\n');
    expect(adapted).toContain('--cert-file=/etc/ssl/etcd/system:etcd-server:${ETCD_DNS_NAME}.crt \\\n');
    expect(ocp4.flag(adapted, 'cert-file')).toBe('/etc/ssl/etcd/system:etcd-server:${ETCD_DNS_NAME}.crt');
    expect(ocp4.flag(adapted, 'listen-peer-urls')).toBe('https://0.0.0.0:2380');
    expect(ocp4.flag(adapted, 'trusted-ca-file')).toBe('/etc/ssl/etcd/ca.crt');
    // The name was a valueFrom (the pod's name): it is this member's now, in env where the peer set it.
    const env = (parseYaml(adapted) as { spec: { containers: { name: string; env?: { name: string; value?: string; valueFrom?: unknown }[] }[] } }).spec.containers[0]!.env!;
    expect(env.find((e) => e.name === 'ETCD_NAME')).toEqual({ name: 'ETCD_NAME', value: 'm3' });
  });

  it('adapts an address written out on the script line to the rebuilt host', () => {
    const peer = MEMBER_YAML.replace('--listen-peer-urls=https://0.0.0.0:2380', '--listen-peer-urls=https://10.0.0.1:2380');
    const adapted = ocp4.adaptConfig(peer, { name: 'm1', host: '10.0.0.1', dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' }, { name: 'm3', host: '10.0.0.3', dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' });
    expect(ocp4.flag(adapted, 'listen-peer-urls')).toBe('https://10.0.0.3:2380');
  });
});
