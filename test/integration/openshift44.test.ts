import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabHost } from '../../src/lab/harness.js';
import { CONTROL_PLANE_PODS } from '../../src/lab/openshift4.js';
import { createLogger } from '../../src/log.js';
import { platformOf } from '../../src/platform/index.js';
import { forceRedeploymentStep } from '../../src/steps/force-redeployment.js';
import { forceRedeployment } from '../../src/worker/steps/kube-steps.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { etcdOperator, etcdStartedWith } from '../support/static-pods.js';
import { approveStep, planRun, takeBackup, threadOf, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const ETCD = 'etcd-pod.yaml';

/**
 * The restore on OpenShift 4.4+ style masters: etcd is the etcd operator's
 * static pod etcd-pod.yaml, whose script discovers its initial cluster
 * (discover-etcd-initial-cluster) and exports ETCD_NAME itself before `exec
 * etcd`; the lab's kubelet runs that script through /bin/sh with the
 * container's env, and the Kubernetes stand-in serves the operator's
 * resource, etcds.operator.openshift.io/cluster, its API servers following
 * the kube-apiserver-pod.yaml static pods.
 */
describe('a restore on OpenShift 4.4 masters (etcd-pod.yaml, the etcd operator)', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('openshift44', 123, { roles: ROLES, lab: { platform: 'openshift4', ocpVersion: '4.4', kube: true } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const manifest = (h: LabHost) => readFileSync(join(h.manifestsDir, ETCD), 'utf8');
  const cluster = () => t.config.inventory.clusters[0]!;
  const flag = (h: LabHost, name: string) => platformOf(cluster()).flag(manifest(h), name);
  const initialCluster = () => t.lab.hosts.map((h) => `${h.name}=${h.peerUrl}`).join(',');
  const operator = () => etcdOperator(t.lab);

  const started = etcdStartedWith;

  it("runs etcd from the operator's script: the initial cluster discovered (empty: each member starts from its data dir), the name from the node's variable; kubectl reads the operator's resource", async () => {
    for (const h of t.lab.hosts) {
      const run = started(h);
      expect(run.args[0]).toBe('etcd');
      expect(run.env).toMatchObject({ ETCD_INITIAL_CLUSTER: '', ETCD_NAME: h.name, ETCD_INITIAL_CLUSTER_STATE: 'existing' });
      expect(flag(h, 'initial-cluster')).toBeUndefined();
    }
    expect((await operator()).spec.forceRedeploymentReason).toBeUndefined();
    // Someone forced a rollout by hand before (as the procedure's oc patch does): the run's own reason must still be set.
    await t.lab.kube!.kubectl(['patch', 'etcd', 'cluster', '--type=merge', '-p', '{"spec":{"forceRedeploymentReason":"by-hand-1"}}']);
    expect((await operator()).spec.forceRedeploymentReason).toBe('by-hand-1');
  });

  it("/etcd restore: every member from the snapshot, the initial cluster exported after the script's discovery, the control-plane pods down meanwhile, then the operator told to redeploy, once", async () => {
    await t.lab.etcdctl(['put', '/restore/marker', 'before']);
    const { id, revision } = await takeBackup(t);
    for (let i = 0; i < 3; i++) await t.lab.etcdctl(['put', `/later/k${i}`, `v${i}`]);

    const { ts, runId } = await planRun(t, `restore ${id}`, /^Restore lab to backup/);
    const seenDown: Record<string, boolean> = {};
    const watch = setInterval(() => {
      for (const h of t.lab.hosts) if (CONTROL_PLANE_PODS.every((f) => !existsSync(join(h.manifestsDir, f)))) seenDown[h.name] = true;
    }, 50);
    expect(await approveStep(t, ts, 2, 'UBOB')).toContain('Approved step 3'); // stop the control-plane pods
    expect(await approveStep(t, ts, 3, 'UBOB')).toContain('Approved step 4'); // stop etcd everywhere, data aside
    const done = await waitForRunStatus(t.slack, ts, 'DONE', 240_000).finally(() => clearInterval(watch));
    expect(seenDown).toEqual({ m1: true, m2: true, m3: true });

    for (const h of t.lab.hosts) {
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
      expect(Number(/"revision":(\d+)/.exec(stdout)![1])).toBe(revision);
      // Where the script computes it, the flag is the bot's export right before exec etcd; token and state in env.
      expect(flag(h, 'initial-cluster')).toBe(initialCluster());
      expect(flag(h, 'initial-cluster-token')).toBe(`lab-${runId}`);
      expect(flag(h, 'initial-cluster-state')).toBe('new');
      expect(manifest(h)).toContain(`        set -x\n        # etcd-medic: recovery settings, exported after the lines above set theirs (etcd takes these); the etcd operator's next revision of this file drops them\n        export ETCD_INITIAL_CLUSTER=${initialCluster()}  # etcd-medic\n        exec etcd \\\n`);
      expect(started(h).env).toMatchObject({ ETCD_INITIAL_CLUSTER: initialCluster(), ETCD_INITIAL_CLUSTER_TOKEN: `lab-${runId}`, ETCD_NAME: h.name });
    }
    expect((await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    const { stdout: later } = await t.lab.etcdctl(['get', '/later/', '--prefix', '--keys-only']);
    expect(later.trim()).toBe('');

    // The last step: the operator's resource patched once with this run's reason.
    const thread = threadOf(t.slack, ts).join('\n');
    expect(done + thread).toContain('Kubernetes ready');
    const set = thread.match(/forceRedeploymentReason of etcds\.operator\.openshift\.io\/cluster set to "(recovery-[^"]+)" \(was "by-hand-1"\)/);
    expect(set, thread.slice(-1500)).not.toBeNull();
    expect(set![1]).toMatch(new RegExp(`^recovery-${runId}-\\d{4}-\\d\\d-\\d\\dT`));
    expect(thread.split('forceRedeploymentReason of etcds.operator.openshift.io/cluster set to').length - 1).toBe(1);
    const after = await operator();
    expect(after.spec.forceRedeploymentReason).toBe(set![1]);

    // The step again (a worker that crashed after the patch, its job retried): it sees this run's reason and sets nothing.
    const resource = platformOf(cluster()).etcdOperator!;
    const again = await forceRedeployment({ cluster: cluster(), log: createLogger('silent') }, forceRedeploymentStep.spec({ cluster: cluster(), resource, runId }));
    expect(again).toMatchObject({ skipped: true, summary: `etcds.operator.openshift.io/cluster already has forceRedeploymentReason "${set![1]}", set by this run: not set again` });
    expect((await operator()).metadata.resourceVersion).toBe(after.metadata.resourceVersion);
  });
});
