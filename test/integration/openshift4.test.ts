import { existsSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabHost } from '../../src/lab/harness.js';
import { CONTROL_PLANE_PODS, labEtcdDnsName } from '../../src/lab/openshift4.js';
import { platformOf } from '../../src/platform/index.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { controlPlaneBack as controlPlaneBackOf, etcdStartedWith } from '../support/static-pods.js';
import { approveStep, latest, planRun, takeBackup, textOf, threadOf, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const ETCD = 'etcd-member.yaml';

/**
 * The runbooks on OpenShift 4.1–4.3 style masters: etcd is the static pod
 * etcd-member.yaml, whose container runs a /bin/sh -c script ending in
 * `exec etcd \` (some flags there, others in its env), beside the
 * kube-apiserver, kube-controller-manager and kube-scheduler pods. The lab's
 * kubelet runs that script through /bin/sh with the container's env, so what
 * the bot writes into the manifest is what etcd starts with.
 */
describe('runbooks on an openshift4 cluster', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('openshift4', 107, {
      roles: ROLES,
      lab: { platform: 'openshift4' },
      // The same hosts described as 4.4+ masters (etcd-pod.yaml): a plan for them must be refused before it acts.
      editInventory: (inv) => {
        const c = inv.clusters[0];
        inv.clusters.push({ ...c, name: 'wrong', platform: { ...c.platform, manifestFile: 'etcd-pod.yaml' } });
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const manifestOf = (h: LabHost) => join(h.manifestsDir, ETCD);
  const manifest = (h: LabHost) => readFileSync(manifestOf(h), 'utf8');
  const platform = () => platformOf(t.config.inventory.clusters[0]!);
  const flag = (h: LabHost, name: string) => platform().flag(manifest(h), name);

  const started = etcdStartedWith;
  const controlPlaneBack = () => controlPlaneBackOf(t.lab);
  const controlPlanePids = () => t.lab.hosts.flatMap((h) => CONTROL_PLANE_PODS.map((f) => h.supervisor.pid(f)));

  /** Watches, while a run goes on, whether each master's control-plane pods were all away from the kubelet at some point. */
  function watchControlPlane(): { stop(): Record<string, boolean> } {
    const seenDown: Record<string, boolean> = {};
    const timer = setInterval(() => {
      for (const h of t.lab.hosts) if (CONTROL_PLANE_PODS.every((f) => !existsSync(join(h.manifestsDir, f)))) seenDown[h.name] = true;
    }, 50);
    return {
      stop() {
        clearInterval(timer);
        return seenDown;
      },
    };
  }

  const plan = (text: string, header: RegExp) => planRun(t, text, header);
  async function approve(ts: string, step: number): Promise<void> {
    expect(await approveStep(t, ts, step, 'UBOB')).toContain(`Approved step ${step + 1}`);
  }
  async function voters(): Promise<string[]> {
    return (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort();
  }
  async function keys(prefix: string, member: string): Promise<number> {
    const { stdout } = await t.lab.etcdctl(['get', prefix, '--prefix', '--keys-only', '--consistency=s'], [t.lab.host(member).clientUrl]);
    return stdout.split('\n').filter(Boolean).length;
  }
  const initialCluster = () => t.lab.hosts.map((h) => `${h.name}=${h.peerUrl}`).join(',');

  /** The fault: two of three members die (SIGKILL; their manifests gone from the kubelet's directory) and their data dirs are gone. */
  async function loseMajority(): Promise<void> {
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    }
  }

  it('refuses a plan for hosts whose etcd manifest is not where the profile says, before anything runs', async () => {
    const before = manifest(t.lab.host('m3'));
    const { msg } = await plan('replace m3 wrong --force', /refused|Replace m3 in wrong/);
    const text = textOf(msg);
    expect(text).toContain('is not laid out as a openshift4 host');
    expect(text).toContain(`holds etcd-member.yaml, not etcd-pod.yaml (the inventory's manifestFile)`);
    expect(text).not.toMatch(/^Replace m3 in wrong/);
    expect(manifest(t.lab.host('m3'))).toBe(before);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
  });

  it('replaces a member whose disk broke: the manifest written back with state existing on its script line and the initial cluster in its env, nothing else changed, etcd started on it', async () => {
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/before/k${i}`, `v${i}`]);
    const m3 = t.lab.host('m3');
    const original = manifest(m3);
    const apiPids = controlPlanePids();
    await t.lab.corruptMember('m3');

    // (A refusal is shown with its reason: the look used to judge real-named certificates missing and refuse here.)
    const { ts, runId, msg } = await plan('replace m3', /refused|^Replace m3 in lab/);
    expect(textOf(msg), textOf(msg)).toMatch(/^Replace m3 in lab/);
    const planText = textOf(latest(t.slack, ts));
    expect(planText).toContain(`mv ${manifestOf(m3)} ${join(dirname(m3.manifestsDir), 'etcd-medic-aside', `${ETCD}.${runId}`)}`);
    expect(planText).toContain('the kubelet starts etcd');
    // Its certificates are where its manifest names them (system:etcd-peer:<etcd DNS name>.crt), valid: nothing to issue, no CA key asked for.
    expect(planText).not.toContain("Issue m3's etcd certificates");
    await approve(ts, 1); // member remove
    await approve(ts, 2); // stop and move aside
    const done = await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    expect(done).toContain('manifest written from');

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/before/', 'm3')).toBe(20);
    // The manifest as written back: the script's flag changed in place, the env entry replaced, every other line as it was.
    const now = manifest(m3);
    expect(flag(m3, 'initial-cluster-state')).toBe('existing');
    expect(flag(m3, 'initial-cluster')).toBe(initialCluster());
    expect(flag(m3, 'name')).toBe('m3');
    expect(flag(m3, 'force-new-cluster')).toBeUndefined();
    expect(now.replace('--initial-cluster-state=existing \\', '--initial-cluster-state=new \\')).toBe(original);
    // What etcd runs with, read from the process: the script's flag on its command line, the rest in its environment.
    const run = started(m3);
    expect(run.args[0]).toBe('etcd');
    expect(run.args).toContain('--initial-cluster-state=existing');
    expect(run.args).toContain(`--initial-advertise-peer-urls=${m3.peerUrl}`);
    expect(run.args).toContain(`--peer-cert-file=${m3.pkiDir}/system:etcd-peer:${labEtcdDnsName('m3')}.crt`);
    expect(run.env).toMatchObject({ ETCD_NAME: 'm3', ETCD_INITIAL_CLUSTER: initialCluster(), ETCD_DATA_DIR: m3.dataDir });
    expect(readFileSync(join(`${m3.dataDir}.before-${runId}`, 'member/snap/db'))[0]).toBe(0x5a);
    expect(readFileSync(join(dirname(m3.manifestsDir), 'etcd-medic-aside', `${ETCD}.${runId}`), 'utf8')).toBe(original);
    // A replace leaves the other control-plane pods alone.
    expect(controlPlanePids()).toEqual(apiPids);
  });

  it('restores quorum through force-new-cluster: ETCD_FORCE_NEW_CLUSTER put into the env, then out again, the manifest back to its very bytes, three voters, every key kept', async () => {
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/rq/k${i}`, `v${i}`]);
    const m1 = t.lab.host('m1');
    const before = manifest(m1);
    await loseMajority();

    const { ts } = await plan('restore-quorum', /^Restore quorum of lab/);
    expect(textOf(latest(t.slack, ts))).toContain('the kubelet restarts etcd on the changed manifest');
    // What m1's etcd runs with while the run goes on: the flag must have reached etcd itself, from the manifest's env.
    const forcedSeen = { manifest: false, etcd: false };
    const watch = setInterval(() => {
      try {
        if (flag(m1, 'force-new-cluster') === 'true') forcedSeen.manifest = true;
        if (started(m1).env.ETCD_FORCE_NEW_CLUSTER === 'true') forcedSeen.etcd = true;
      } catch {
        /* between a manifest's write and the kubelet's restart */
      }
    }, 50);
    await approve(ts, 1); // fence m2, m3
    await approve(ts, 2); // force-new-cluster on m1
    const done = await waitForRunStatus(t.slack, ts, 'DONE', 240_000).finally(() => clearInterval(watch));
    expect(done).toContain('--force-new-cluster is out of the manifest');
    expect(forcedSeen).toEqual({ manifest: true, etcd: true });

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/rq/', 'm3')).toBe(10);
    expect(manifest(m1)).toBe(before);
    expect(started(m1).env.ETCD_FORCE_NEW_CLUSTER).toBeUndefined();
    expect(started(m1).args).not.toContain('--force-new-cluster');
    for (const name of ['m2', 'm3']) {
      const h = t.lab.host(name);
      expect(flag(h, 'initial-cluster-state')).toBe('existing');
      expect(started(h).args).toContain('--initial-cluster-state=existing');
    }
    expect(await controlPlaneBack()).toEqual([]);
  });

  it('restores quorum from a verified snapshot, with the kube-apiserver, kube-controller-manager and kube-scheduler pods stopped meanwhile and started after', async () => {
    const { id } = await takeBackup(t);
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/after/k${i}`, `v${i}`]);
    await loseMajority();
    const m1 = t.lab.host('m1');
    const pidsBefore = controlPlanePids();

    const { ts, runId } = await plan(`restore-quorum --snapshot ${id}`, /^Restore quorum of lab/);
    const aside = join(dirname(m1.manifestsDir), 'etcd-medic-aside');
    expect(textOf(latest(t.slack, ts))).toContain(`mv ${m1.manifestsDir}/kube-apiserver-pod.yaml ${aside}/kube-apiserver-pod.yaml.${runId}`);
    const watch = watchControlPlane();
    await approve(ts, 1); // stop the control-plane pods
    await approve(ts, 2); // fence m2, m3
    await approve(ts, 3); // restore onto m1
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    const seenDown = watch.stop();

    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/restored onto m1 \(revision \d+, checked offline, KV hash \d+ as recorded\): it leads a one-member cluster/);
    expect(seenDown).toEqual({ m1: true, m2: true, m3: true });
    expect(thread).toContain('kube-apiserver, kube-controller-manager and kube-scheduler stopped on m1, m2, m3');
    expect(thread).toContain('kube-apiserver, kube-controller-manager and kube-scheduler started again on m1, m2, m3');
    expect(await controlPlaneBack()).toEqual([]);
    // Each was stopped and started again: another process now.
    expect(controlPlanePids().filter((p, i) => p === pidsBefore[i])).toEqual([]);
    for (const f of CONTROL_PLANE_PODS) expect(existsSync(join(aside, `${f}.${runId}`))).toBe(false);
    // m1 started from the snapshot as a new one-member cluster: its token on the script line, its initial cluster in env.
    expect(flag(m1, 'initial-cluster-token')).toBe(`lab-${runId}`);
    expect(flag(m1, 'initial-cluster-state')).toBe('new');
    expect(flag(m1, 'initial-cluster')).toBe(`m1=${m1.peerUrl}`);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/after/', 'm2')).toBe(0);
    expect(await keys('/rq/', 'm2')).toBe(10);
  });

  it('/etcd restore brings every member to the snapshot, the other control-plane pods down meanwhile', async () => {
    await t.lab.etcdctl(['put', '/restore/marker', 'before']);
    const { id, revision } = await takeBackup(t);
    for (let i = 0; i < 3; i++) await t.lab.etcdctl(['put', `/later/k${i}`, `v${i}`]);

    const { ts, runId } = await plan(`restore ${id}`, /^Restore lab to backup/);
    const watch = watchControlPlane();
    await approve(ts, 2); // stop the control-plane pods
    await approve(ts, 3); // stop etcd everywhere, data aside
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    expect(watch.stop()).toEqual({ m1: true, m2: true, m3: true });

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    for (const h of t.lab.hosts) {
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
      expect(Number(/"revision":(\d+)/.exec(stdout)![1])).toBe(revision);
      expect(flag(h, 'initial-cluster-state')).toBe('new');
      expect(flag(h, 'initial-cluster-token')).toBe(`lab-${runId}`);
      expect(flag(h, 'initial-cluster')).toBe(initialCluster());
      expect(started(h).args).toContain(`--initial-cluster-token=lab-${runId}`);
    }
    expect(await controlPlaneBack()).toEqual([]);
    expect(await keys('/later/', 'm1')).toBe(0);
    expect(await keys('/restore/marker', 'm3')).toBe(1);
  });
});
