import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inventorySchema } from '../../src/config/schema.js';
import { memberPlace, platformOf } from '../../src/platform/index.js';
import { scriptFlag, withScriptFlag } from '../../src/platform/pod-script.js';
import { etcdPodManifest } from '../../src/lab/openshift4.js';
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

  it('refuses a manifest it cannot read surely: no exec etcd line, two of them; a variable the script sets itself is overridden after it', () => {
    const kubeadmLike = 'spec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n    - --name=m1\n';
    expect(() => ocp4.flag(kubeadmLike, 'name')).toThrow(/no container that runs etcd from a \/bin\/sh -c script/);
    const two = MEMBER_YAML.replace('      source /run/etcd/environment\n', '      if [ -e /x ]; then\n        exec etcd --force-new-cluster\n      fi\n');
    expect(() => ocp4.flag(two, 'name')).toThrow(/runs etcd on 2 lines/);
    const assigns = MEMBER_YAML.replace('      source /run/etcd/environment\n', '      export ETCD_INITIAL_CLUSTER=a=https://x:2380\n');
    // Its env entry would say nothing (the script's assignment wins): the bot's export after it is what etcd gets.
    expect(ocp4.flag(assigns, 'initial-cluster')).toBeUndefined();
    const over = ocp4.withFlags(assigns, { 'initial-cluster': 'b=https://y:2380' });
    expect(ocp4.flag(over, 'initial-cluster')).toBe('b=https://y:2380');
    expect(over).toContain('      export ETCD_INITIAL_CLUSTER=a=https://x:2380\n');
    expect(over).toContain('      export ETCD_INITIAL_CLUSTER=b=https://y:2380  # etcd-medic\n      exec etcd \\\n');
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
    // Not there before the run, not there after it: said, so the run's end can say that pod does not run.
    expect(start.stdout).toContain(`missing: ${manifests}/kube-controller-manager-pod.yaml is neither in place nor kept aside by this run: that pod does not run on this master`);
    expect(runLines(p.apiserverLines(place, 'start')).stdout).toContain(`${manifests}/kube-scheduler-pod.yaml is in place, not moved aside by this run`);
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

describe('openshift4 platform: 4.4+ etcd-pod.yaml, whose script discovers its own initial cluster', () => {
  const c44 = clusterWith({ kind: 'openshift4', manifestFile: 'etcd-pod.yaml' });
  const p44 = platformOf(c44);
  const masters = [
    { name: 'ip-10-0-1-1.ec2.internal', ip: '10.0.1.1' },
    { name: 'ip-10-0-1-2.ec2.internal', ip: '10.0.1.2' },
    { name: 'ip-10-0-1-3.ec2.internal', ip: '10.0.1.3' },
  ];
  const POD_YAML = etcdPodManifest({
    name: masters[0]!.name,
    ip: '0.0.0.0',
    dataDir: '/var/lib/etcd',
    pkiDir: '/etc/kubernetes/static-pod-certs/secrets/etcd-all-certs',
    manifestsDir: '/etc/kubernetes/manifests',
    backupDir: '/etc/kubernetes/static-pod-resources/etcd-member',
    masters,
    endpoints: masters.map((m) => `https://${m.ip}:2379`),
  });
  const RESTORE = 'ip-10-0-1-1.ec2.internal=https://10.0.1.1:2380';
  const scriptOf = (text: string) => (parseYaml(text).spec.containers as { name: string; command: string[] }[]).find((x) => x.name === 'etcd')!.command[2]!;

  /**
   * Runs the etcd container's script as the kubelet would (its env, /bin/sh), with a discovery that prints
   * what discovery would and an etcd that prints the ETCD_ variables and flags it was started with.
   */
  function runPod(text: string, discovered: string): { env: Record<string, string>; args: string[] } {
    const bin = mkdtempSync(join(dir, 'bin-'));
    writeFileSync(join(bin, 'discover-etcd-initial-cluster'), `#!/bin/sh\necho '${discovered}'\n`);
    writeFileSync(join(bin, 'etcd'), '#!/bin/sh\nenv | grep "^ETCD_" | sort\nfor a in "$@"; do echo "ARG $a"; done\n');
    for (const f of ['discover-etcd-initial-cluster', 'etcd']) chmodSync(join(bin, f), 0o755);
    const container = (parseYaml(text).spec.containers as { name: string; env: { name: string; value: string }[] }[]).find((x) => x.name === 'etcd')!;
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
    const r = spawnSync('/bin/sh', ['-c', scriptOf(text)], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, ...env } });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    // The script prints its own `env | grep ETCD` first; what etcd got is what follows the discovery's trace.
    const ours = lines.slice(lines.lastIndexOf('ETCD_DATA_DIR=/var/lib/etcd'));
    const started = Object.fromEntries(ours.filter((l) => /^ETCD_[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    return { env: started, args: ours.filter((l) => l.startsWith('ARG ')).map((l) => l.slice(4)) };
  }

  it('is recognised as operator-run: the etcd operator is named, and 4.1–4.3 clusters have none', () => {
    expect(p44.etcdOperator).toEqual({ group: 'operator.openshift.io', version: 'v1', plural: 'etcds', name: 'cluster' });
    expect(ocp4.etcdOperator).toBeNull();
    expect(platformOf(clusterWith({ kind: 'openshift4' }, { manifestFile: 'etcd-pod.yaml' })).etcdOperator).not.toBeNull();
  });

  it('reads what the manifest decides: the script flags, the env state; the discovered initial cluster and the node name as unknown', () => {
    expect(p44.flag(POD_YAML, 'listen-client-urls')).toBe('https://0.0.0.0:2379');
    expect(p44.flag(POD_YAML, 'initial-cluster-state')).toBe('existing');
    expect(p44.flag(POD_YAML, 'initial-cluster')).toBeUndefined();
    expect(p44.flag(POD_YAML, 'name')).toBeUndefined();
    expect(p44.flag(POD_YAML, 'force-new-cluster')).toBeUndefined();
  });

  it("a restore's flags: the initial cluster exported by the bot right before exec etcd (after the discovery), token and state in env; etcd gets the bot's values", () => {
    const written = p44.withFlags(POD_YAML, { 'force-new-cluster': null, 'initial-cluster': RESTORE, 'initial-cluster-token': 'lab-r1', 'initial-cluster-state': 'new' });
    expect(p44.flag(written, 'initial-cluster')).toBe(RESTORE);
    expect(p44.flag(written, 'initial-cluster-token')).toBe('lab-r1');
    expect(p44.flag(written, 'initial-cluster-state')).toBe('new');
    const script = scriptOf(written);
    // One commented block of the bot's, directly before the etcd command; the discovery lines as they were.
    expect(script).toContain(`set -x\n# etcd-medic: recovery settings, exported after the lines above set theirs (etcd takes these); the etcd operator's next revision of this file drops them\nexport ETCD_INITIAL_CLUSTER=${RESTORE}  # etcd-medic\nexec etcd \\\n`);
    expect(script.replace(/^# etcd-medic: .*\n|^export .*# etcd-medic\n/gm, '')).toBe(scriptOf(POD_YAML));
    // Every other line of the manifest as it was, but the state's env value and the token's new entry.
    const changed = written.split('\n').filter((l) => !POD_YAML.split('\n').includes(l));
    expect(changed.filter((l) => !l.includes('etcd-medic')).sort()).toEqual(['    - name: ETCD_INITIAL_CLUSTER_TOKEN', '      value: "lab-r1"', '      value: "new"'].sort());
    // What etcd starts with, the script run: discovery said otherwise, the bot's export came after it.
    const got = runPod(written, 'someone-else=https://10.9.9.9:2380');
    expect(got.env).toMatchObject({ ETCD_INITIAL_CLUSTER: RESTORE, ETCD_INITIAL_CLUSTER_STATE: 'new', ETCD_INITIAL_CLUSTER_TOKEN: 'lab-r1', ETCD_NAME: masters[0]!.name });
    expect(got.args).toContain('--listen-client-urls=https://0.0.0.0:2379');
    // Untouched, the same script starts etcd on what discovery printed.
    expect(runPod(POD_YAML, 'someone-else=https://10.9.9.9:2380').env.ETCD_INITIAL_CLUSTER).toBe('someone-else=https://10.9.9.9:2380');
  });

  it('force-new-cluster goes into env and out again to the very bytes; a written-again flag replaces its line; taking the initial cluster out takes the block out', () => {
    const forced = p44.withFlags(POD_YAML, { 'force-new-cluster': 'true' });
    expect(runPod(forced, '').env.ETCD_FORCE_NEW_CLUSTER).toBe('true');
    expect(p44.withFlags(forced, { 'force-new-cluster': null })).toBe(POD_YAML);
    const once = p44.withFlags(POD_YAML, { 'initial-cluster': RESTORE, name: 'm9' });
    expect(p44.flag(once, 'name')).toBe('m9');
    const twice = p44.withFlags(once, { 'initial-cluster': 'a=https://10.0.0.9:2380,b=https://10.0.0.8:2380' });
    expect(scriptOf(twice).match(/# etcd-medic$/gm)).toHaveLength(2);
    expect(scriptOf(twice).match(/^# etcd-medic: /gm)).toHaveLength(1);
    expect(runPod(twice, 'x=https://1.1.1.1:2380').env).toMatchObject({ ETCD_INITIAL_CLUSTER: 'a=https://10.0.0.9:2380,b=https://10.0.0.8:2380', ETCD_NAME: 'm9' });
    expect(p44.withFlags(twice, { 'initial-cluster': null, name: null })).toBe(POD_YAML);
    // A value with a quote is written as one shell word.
    const odd = p44.withFlags(POD_YAML, { name: "it's" });
    expect(runPod(odd, '').env.ETCD_NAME).toBe("it's");
    expect(() => p44.withFlags(POD_YAML, { 'initial-cluster': 'a=https://x:2380\nrm -rf /' })).toThrow(/line break/);
  });

  it("is not adapted from a peer's: the operator wrote it for the peer's node", () => {
    const side = (name: string, host: string) => ({ name, host, dataDir: '/var/lib/etcd', pkiDir: '/etc/ssl/etcd' });
    expect(() => p44.adaptConfig(POD_YAML, side(masters[0]!.name, '10.0.1.1'), side('m9', '10.0.1.9'))).toThrow(/written by the etcd operator for its own node \(it names NODE_ip_10_0_1_1_ec2_internal_… variables\)/);
  });

  it('the layout look passes an etcd-pod.yaml; a restore pod that cluster-restore.sh left is refused, with why', () => {
    const root = mkdtempSync(join(dir, 'host44-'));
    const manifests = join(root, 'etc/kubernetes/manifests');
    mkdirSync(manifests, { recursive: true });
    writeFileSync(join(manifests, 'etcd-pod.yaml'), POD_YAML);
    const c = clusterWith({ kind: 'openshift4', manifestFile: 'etcd-pod.yaml' }, { manifestsDir: manifests, dataDir: join(root, 'etcd') });
    expect(lookLayout(platformOf(c).layoutLines(c.members[0]!))).toBe('');
    const restorePod = POD_YAML.replace('        set -x\n', '        ETCDCTL_API=3 /usr/bin/etcdctl snapshot restore /var/lib/etcd-backup/snapshot.db \\\n         --data-dir="/var/lib/etcd/restore-${UUID}"\n\n        set -x\n');
    writeFileSync(join(manifests, 'etcd-pod.yaml'), restorePod);
    expect(lookLayout(platformOf(c).layoutLines(c.members[0]!))).toBe(`layout:${manifests}/etcd-pod.yaml is a restore pod (OpenShift's cluster-restore.sh writes one): its script restores a snapshot each time it starts; finish or undo that restore first (the etcd operator's next revision replaces it)\n`);
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
    expect(adapted).toContain('        --advertise-client-urls=https://${ETCD_IPV4_ADDRESS}:2379 \\\n');
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
