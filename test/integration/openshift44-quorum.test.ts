import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabHost } from '../../src/lab/harness.js';
import { CONTROL_PLANE_PODS } from '../../src/lab/openshift4.js';
import { waitFor } from '../../src/lab/proc.js';
import { platformOf } from '../../src/platform/index.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { controlPlaneBack as controlPlaneBackOf, etcdOperator, etcdStartedWith } from '../support/static-pods.js';
import { approveStep, latest, planRun, takeBackup, textOf, threadOf, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const ETCD = 'etcd-pod.yaml';

/**
 * Restore-quorum on OpenShift 4.4+ style masters: etcd is the etcd operator's
 * static pod etcd-pod.yaml, whose script discovers its initial cluster and
 * exports ETCD_NAME before `exec etcd`; the Kubernetes stand-in follows the
 * kube-apiserver-pod.yaml static pods and serves the operator's resource,
 * etcds.operator.openshift.io/cluster. Two of three masters lose etcd and its
 * data; the bot brings the cluster back through both paths the planner offers
 * (force-new-cluster from the survivor, a verified snapshot onto it), then
 * tells the operator to roll out a new revision.
 */
describe('restore-quorum on OpenShift 4.4 masters (etcd-pod.yaml, the etcd operator)', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('openshift44-quorum', 154, { roles: ROLES, lab: { platform: 'openshift4', ocpVersion: '4.4', kube: true } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const manifestOf = (h: LabHost) => join(h.manifestsDir, ETCD);
  const manifest = (h: LabHost) => readFileSync(manifestOf(h), 'utf8');
  const cluster = () => t.config.inventory.clusters[0]!;
  const flag = (h: LabHost, name: string) => platformOf(cluster()).flag(manifest(h), name);
  const operator = () => etcdOperator(t.lab);

  const started = etcdStartedWith;
  const controlPlaneBack = () => controlPlaneBackOf(t.lab);

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

  /**
   * The fault: two of three masters' disks break. Their etcd dies (SIGKILL) and its database is overwritten
   * with garbage; their etcd-pod.yaml stays where the operator wrote it, so the kubelet keeps restarting a pod
   * that cannot start: the majority is lost and stays lost.
   */
  async function loseMajority(): Promise<void> {
    const since = Date.now();
    for (const name of ['m2', 'm3']) await t.lab.corruptMember(name);
    // As an SRE finds them, in CrashLoopBackOff: the kubelet waits seconds between starts, each start dying within
    // milliseconds. (Right after the fault it restarts every half second, and a look that lands on a start sees etcd run.)
    for (const name of ['m2', 'm3']) await waitFor(`${name}'s etcd pod in crash-loop backoff`, () => crashGapMs(name, since) >= 4000, 30_000, 250);
  }
  /** How long the kubelet waited between the last two deaths of a member's etcd since `since` (from the panics in its pod log). */
  function crashGapMs(name: string, since: number): number {
    const log = readFileSync(join(t.lab.host(name).logDir, 'etcd-pod.log'), 'utf8');
    const panics = [...log.matchAll(/"level":"panic","ts":"([^"]+)"/g)].map((m) => Date.parse(m[1]!)).filter((at) => at >= since);
    return panics.length >= 2 ? panics.at(-1)! - panics.at(-2)! : 0;
  }

  /** What an SRE checks after the run: healthy, three voters, no force-new-cluster left anywhere, control plane back, the operator told once with this run's reason. */
  async function checkRecovered(ts: string, runId: string, reasonBefore: string | undefined): Promise<void> {
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect((await t.lab.etcdctl(['endpoint', 'health'], t.lab.endpoints, true)).code).toBe(0);
    for (const h of t.lab.hosts) {
      const text = manifest(h);
      expect(flag(h, 'force-new-cluster'), h.name).toBeUndefined();
      expect(text, h.name).not.toMatch(/force-new-cluster|FORCE_NEW_CLUSTER/);
      const run = started(h);
      expect(run.args, h.name).not.toContain('--force-new-cluster');
      expect(run.env.ETCD_FORCE_NEW_CLUSTER, h.name).toBeUndefined();
      expect(run.env.ETCD_NAME).toBe(h.name);
    }
    expect(await controlPlaneBack()).toEqual([]);

    const thread = threadOf(t.slack, ts).join('\n');
    const was = reasonBefore ? `was "${reasonBefore}"` : 'was unset';
    const set = thread.match(/forceRedeploymentReason of etcds\.operator\.openshift\.io\/cluster set to "(recovery-[^"]+)"( \([^)]*\))?/);
    expect(set, thread.slice(-2000)).not.toBeNull();
    expect(set![1]).toMatch(new RegExp(`^recovery-${runId}-\\d{4}-\\d\\d-\\d\\dT`));
    if (reasonBefore) expect(set![2]).toContain(was);
    expect(thread.split('forceRedeploymentReason of etcds.operator.openshift.io/cluster set to').length - 1).toBe(1);
    expect((await operator()).spec.forceRedeploymentReason).toBe(set![1]);
  }

  it("refuses, before anything runs, when the dead masters' etcd-pod.yaml was moved out of the kubelet's directory (no peer's is adapted on 4.4+), naming where each goes back", async () => {
    // The fault: m2 and m3 die, their manifests taken away (as by hand, the procedure's first step); their data stays.
    for (const name of ['m2', 'm3']) await t.lab.killMember(name);
    const m1Before = manifest(t.lab.host('m1'));
    try {
      const { msg } = await planRun(t, 'restore-quorum', /refused|^Restore quorum of lab/);
      const text = textOf(msg);
      expect(text).toContain('`/etcd restore-quorum` refused');
      expect(text).toContain('nothing was started or changed');
      for (const name of ['m2', 'm3']) {
        const h = t.lab.host(name);
        expect(text).toContain(`${name}'s host has no ${manifestOf(h)}: on OpenShift 4.4+ the etcd operator writes each master's etcd-pod.yaml for that node`);
        expect(text).toContain(`Put ${name}'s own back at ${manifestOf(h)}`);
        expect(existsSync(h.dataDir)).toBe(true);
      }
      expect(manifest(t.lab.host('m1'))).toBe(m1Before);
      expect(flag(t.lab.host('m1'), 'force-new-cluster')).toBeUndefined();
    } finally {
      // Put back as the message says: they start from their own data and the cluster heals.
      for (const name of ['m2', 'm3']) await t.lab.startMember(name);
      await t.lab.waitHealthy();
    }
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    // The API server answers again once etcd has quorum (it timed out meanwhile): nothing told the operator anything.
    const spec = await waitFor('the operator resource readable', async () => (await operator().catch(() => null))?.spec, 30_000, 500);
    expect(spec.forceRedeploymentReason).toBeUndefined();
  });

  it('restores quorum through force-new-cluster from the survivor: the flag in and out of etcd-pod.yaml, members grown back, every key kept, the operator told to redeploy', async () => {
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/rq/k${i}`, `v${i}`]);
    const m1 = t.lab.host('m1');
    const reasonBefore = (await operator()).spec.forceRedeploymentReason;
    await loseMajority();

    const { ts, runId } = await planRun(t, 'restore-quorum', /^Restore quorum of lab/);
    const planText = textOf(latest(t.slack, ts));
    expect(planText).toContain('force-new-cluster path: m1 is the most up-to-date survivor');
    expect(planText).toContain('Force the etcd operator to redeploy etcd on every master');
    // Whether the flag reached m1's etcd itself while the run went on.
    const forcedSeen = { manifest: false, etcd: false };
    const watch = setInterval(() => {
      try {
        if (flag(m1, 'force-new-cluster') === 'true') forcedSeen.manifest = true;
        const run = started(m1);
        if (run.env.ETCD_FORCE_NEW_CLUSTER === 'true' || run.args.includes('--force-new-cluster') || run.args.includes('--force-new-cluster=true')) forcedSeen.etcd = true;
      } catch {
        /* between a manifest's write and the kubelet's restart */
      }
    }, 50);
    await approve(ts, 1); // fence m2, m3
    await approve(ts, 2); // force-new-cluster on m1
    const done = await waitForRunStatus(t.slack, ts, 'DONE', 240_000).finally(() => clearInterval(watch));
    expect(done).toContain('--force-new-cluster is out of the manifest');
    expect(forcedSeen).toEqual({ manifest: true, etcd: true });

    for (const name of ['m1', 'm2', 'm3']) expect(await keys('/rq/', name), name).toBe(20);
    await checkRecovered(ts, runId, reasonBefore);
  }, 300_000);

  it('restores quorum from a verified snapshot: the control-plane pods stopped and started again, keys up to the snapshot there, the operator told to redeploy', async () => {
    const { id } = await takeBackup(t);
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/after/k${i}`, `v${i}`]);
    const reasonBefore = (await operator()).spec.forceRedeploymentReason;
    await loseMajority();

    const { ts, runId } = await planRun(t, `restore-quorum --snapshot ${id}`, /^Restore quorum of lab/);
    expect(textOf(latest(t.slack, ts))).toContain(`snapshot path: backup ${id}`);
    const seenDown: Record<string, boolean> = {};
    const watch = setInterval(() => {
      for (const h of t.lab.hosts) if (CONTROL_PLANE_PODS.every((f) => !existsSync(join(h.manifestsDir, f)))) seenDown[h.name] = true;
    }, 50);
    await approve(ts, 1); // stop the control-plane pods
    await approve(ts, 2); // fence m2, m3
    await approve(ts, 3); // restore onto m1
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000).finally(() => clearInterval(watch));
    expect(seenDown).toEqual({ m1: true, m2: true, m3: true });

    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/restored onto m1 \(revision \d+, checked offline, KV hash \d+ as recorded\): it leads a one-member cluster/);
    expect(thread).toContain('kube-apiserver, kube-controller-manager and kube-scheduler started again on m1, m2, m3');
    for (const name of ['m1', 'm2', 'm3']) {
      expect(await keys('/rq/', name), name).toBe(20);
      expect(await keys('/after/', name), name).toBe(0);
    }
    const m1 = t.lab.host('m1');
    expect(started(m1).env.ETCD_INITIAL_CLUSTER_TOKEN).toBe(`lab-${runId}`);
    await checkRecovered(ts, runId, reasonBefore);
  }, 300_000);
});
