import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryBackupStore } from '../../src/backup/store.js';
import { EtcdPool } from '../../src/etcd/pool.js';
import type { LabHost } from '../../src/lab/harness.js';
import { CONTROL_PLANE_PODS } from '../../src/lab/openshift4.js';
import { waitFor } from '../../src/lab/proc.js';
import { createLogger } from '../../src/log.js';
import { platformOf } from '../../src/platform/index.js';
import { newRun } from '../../src/runbook/new-run.js';
import { hostPlaces } from '../../src/runbook/restore-quorum-plan.js';
import type { ObservedState, Run } from '../../src/runbook/types.js';
import { forceNewClusterStep } from '../../src/steps/force-new-cluster.js';
import { stepExecutors, stepUndo } from '../../src/worker/executors.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, approveStep, latest, planRun, takeBackup, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const ETCD = 'etcd-member.yaml';

/**
 * Runs on OpenShift 4.1–4.3 masters that end before their last step: what
 * their destructive writes leave on the hosts, and what the run puts back.
 * The control-plane pods a restore stopped must not stay down when the
 * restore does not happen; --force-new-cluster must not stay in the
 * survivor's manifest when the step that wrote it did not finish.
 */
describe('openshift4 runs that end early put back what they stopped or flagged', () => {
  let t: MedicLab;
  const pool = new EtcdPool();
  const log = createLogger('silent');

  beforeAll(async () => {
    t = await startMedicLab('ocp4-ends', 137, { roles: ROLES, lab: { platform: 'openshift4' } });
  });
  afterAll(async () => {
    await pool.close();
    await t?.stop();
  });

  const cluster = () => t.config.inventory.clusters[0]!;
  const platform = () => platformOf(cluster());
  const manifestOf = (h: LabHost) => join(h.manifestsDir, ETCD);
  const manifest = (h: LabHost) => readFileSync(manifestOf(h), 'utf8');
  const asideOf = (h: LabHost) => join(dirname(h.manifestsDir), 'etcd-medic-aside');

  /** What the running etcd was started with: its ETCD_* environment, from /proc (null: none runs). */
  function etcdEnv(h: LabHost): Record<string, string> | null {
    const pid = h.supervisor.pid();
    if (!pid) return null;
    try {
      return Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter((e) => e.startsWith('ETCD_'))
          .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
      );
    } catch {
      return null;
    }
  }

  /** The control-plane pods not running on their master (manifest away, or the kubelet not running it). */
  const controlPlaneDown = () =>
    t.lab.hosts.flatMap((h) => CONTROL_PLANE_PODS.filter((f) => !existsSync(join(h.manifestsDir, f)) || h.supervisor.pid(f) === null).map((f) => `${h.name} ${f}`));

  async function voters(): Promise<string[]> {
    return (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort();
  }

  it('/etcd restore rejected at the fence, after the control-plane pods were stopped: they are started again on every master and the thread says so; etcd untouched', async () => {
    await t.lab.etcdctl(['put', '/ends/marker', 'kept']);
    const { id } = await takeBackup(t);
    expect(controlPlaneDown()).toEqual([]);

    const { ts, runId } = await planRun(t, `restore ${id}`, /^Restore lab to backup/);
    expect(await approveStep(t, ts, 2, 'UBOB')).toContain('Approved step 3'); // stop kube-apiserver, kube-controller-manager, kube-scheduler
    const gate = await waitForGate(t.slack, ts, 3);
    // Stopped on every master by now, their manifests in the run's aside dir.
    for (const h of t.lab.hosts) for (const f of CONTROL_PLANE_PODS) expect(existsSync(join(asideOf(h), `${f}.${runId}`))).toBe(true);
    expect(controlPlaneDown()).toHaveLength(9);

    // The fault: the second person rejects the fence (no restore will happen).
    const click = await t.click({ user: 'UBOB', messageTs: ts, actionId: 'medic_reject', blockId: gate.blockId, value: gate.reject });
    await answerAt(t.slack, click.responseUrl);
    await waitForRunStatus(t.slack, ts, 'REJECTED', 60_000);

    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(new RegExp(`:rotating_light: Run \`${runId}\` ended REJECTED before its last step\\. Put back:`));
    expect(thread).toContain('• kube-apiserver, kube-controller-manager and kube-scheduler started again on m1, m2, m3: what this run had stopped is back');
    // On the hosts: every manifest back in the kubelet's directory and running, nothing of this run left aside.
    await waitFor('every control-plane pod running again', async () => controlPlaneDown().length === 0, 10_000, 100).catch(() => undefined);
    expect(controlPlaneDown()).toEqual([]);
    for (const h of t.lab.hosts) for (const f of CONTROL_PLANE_PODS) expect(existsSync(join(asideOf(h), `${f}.${runId}`))).toBe(false);
    // etcd was never touched: three voters, the data as it was.
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect((await t.lab.etcdctl(['get', '/ends/marker', '--print-value-only'])).stdout.trim()).toBe('kept');
  });

  it('/etcd restore cancelled once etcd is stopped everywhere: the thread says where each manifest and data dir is kept, and its commands bring the cluster back as it was', { timeout: 120_000 }, async () => {
    await t.lab.etcdctl(['put', '/ends/before-cancel', 'kept']);
    const { id } = await takeBackup(t);
    const { ts, runId } = await planRun(t, `restore ${id}`, /^Restore lab to backup/);
    expect(await approveStep(t, ts, 2, 'UBOB')).toContain('Approved step 3'); // stop the control-plane pods
    expect(await approveStep(t, ts, 3, 'UBOB')).toContain('Approved step 4'); // stop etcd everywhere, data aside
    // The fault: someone cancels while the fence runs (m1's manifest is aside already); the step ends, nothing after it runs.
    const m1 = t.lab.host('m1');
    await waitFor('the fence to move m1\'s manifest aside', async () => existsSync(join(asideOf(m1), `${ETCD}.${runId}`)), 30_000, 20);
    await t.command(`cancel ${runId}`, { user: 'UALICE' });
    await waitForRunStatus(t.slack, ts, 'CANCELLED', 60_000);

    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toContain('Done: 1. Verify backup');
    expect(thread).toMatch(/Not done: 5\. Restore backup/);
    expect(thread).toMatch(new RegExp(`:rotating_light: Run \`${runId}\` ended CANCELLED with work left half-done on a host \\(nothing was deleted\\):`));
    expect(thread).toContain('etcd stopped by this run and not started again on m1, m2, m3');
    for (const h of t.lab.hosts) {
      expect(thread).toContain(`${h.name}: ${manifestOf(h)} kept at ${join(asideOf(h), `${ETCD}.${runId}`)}, data at ${h.dataDir}.before-${runId}`);
      expect(h.supervisor.pid()).toBeNull();
    }
    // What the thread says to type, typed on each host as an operator would: the cluster comes back with its data.
    const commands = [...thread.matchAll(/on (m\d) `(test ! -e [^`]+)`/g)];
    expect(commands.map((c) => c[1])).toEqual(['m1', 'm2', 'm3']);
    for (const [, , cmd] of commands) {
      const r = spawnSync('bash', ['-c', cmd!], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    await t.lab.waitHealthy(60_000);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect((await t.lab.etcdctl(['get', '/ends/before-cancel', '--print-value-only'])).stdout.trim()).toBe('kept');
  });

  it('/etcd restore on masters where a control-plane pod was already gone: the run ends with a warning naming it, not "every step done"', { timeout: 120_000 }, async () => {
    const m2 = t.lab.host('m2');
    const sched = join(m2.manifestsDir, 'kube-scheduler-pod.yaml');
    // The fault: m2's kube-scheduler manifest is gone from the kubelet's directory (a master half rebuilt).
    renameSync(sched, join(dirname(m2.manifestsDir), 'kube-scheduler-pod.yaml.lost'));
    try {
      const { id } = await takeBackup(t);
      const { ts, runId } = await planRun(t, `restore ${id}`, /^Restore lab to backup/);
      expect(await approveStep(t, ts, 2, 'UBOB')).toContain('Approved step 3');
      expect(await approveStep(t, ts, 3, 'UBOB')).toContain('Approved step 4');
      // The run's end: done, with the warning in its header (not the bare DONE of a run with nothing to say).
      const header = () => textOf(latest(t.slack, ts)).split('\n')[0]!;
      await waitFor('the run to end', async () => /: (DONE|FAILED|CANCELLED|REJECTED)/.test(header()), 240_000, 200);
      expect(header()).toMatch(/: DONE: etcd restored, but not every control-plane pod runs again$/);
      await t.slack.waitFor((r) => String(r.body.text).includes(`Run \`${runId}\` finished`), 30_000);
      const thread = threadOf(t.slack, ts).join('\n');
      expect(thread).toContain(`:warning: Run \`${runId}\` finished: every step done; etcd restored, but not every control-plane pod runs again: no manifest in the kubelet's directory for m2: ${sched}`);
      expect(thread).not.toContain(`:tada: Run \`${runId}\` finished`);
      // The kubelet looks every 200 ms: every other control-plane pod runs again, that one does not.
      await waitFor('the other control-plane pods to run again', async () => controlPlaneDown().length <= 1, 10_000, 100).catch(() => undefined);
      expect(controlPlaneDown()).toEqual(['m2 kube-scheduler-pod.yaml']);
      expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    } finally {
      renameSync(join(dirname(m2.manifestsDir), 'kube-scheduler-pod.yaml.lost'), sched);
    }
  });

  it('a force-new-cluster step cut off after it wrote the flag (its worker lost the run): the run that ends takes --force-new-cluster out of the manifest again, and etcd runs without it', { timeout: 120_000 }, async () => {
    const m1 = t.lab.host('m1');
    const original = manifest(m1);
    // The fault before: two of three members die, their data gone; m1 is the survivor a restore-quorum forces.
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    }

    const inventory = t.config.inventory;
    const runId = `r-${randomBytes(4).toString('hex')}`;
    const place = hostPlaces(cluster(), cluster().members.find((m) => m.name === 'm1')!, runId);
    const step = forceNewClusterStep.spec({ cluster: cluster(), place, endpoint: m1.clientUrl });
    const state: ObservedState = { members: [], leaderHex: null, raftIndex: 1, revision: 1, at: new Date().toISOString() };
    const run: Run = newRun(inventory, { runId, runbook: 'restore-quorum', title: 'Restore quorum of lab', cluster: cluster().name, target: 'm1', steps: [step], plannedState: state, requestedBy: 'UALICE', channelId: 'C' }, new Date());
    const store = new DirectoryBackupStore(inventory.backups.dir);

    // The step runs, and its worker loses the run lease right after the manifest with the flag is written.
    const lease = new AbortController();
    const running = stepExecutors(inventory, pool, store, log)['force-new-cluster'](run, step, 0, undefined, lease.signal);
    await waitFor('the flag in m1\'s manifest', async () => platform().flag(manifest(m1), 'force-new-cluster') === 'true', 30_000, 20);
    lease.abort(new Error('the run lease was lost'));
    await expect(running).rejects.toThrow();
    // What the cut-off step left: the manifest still asks for a new cluster at every start of etcd.
    expect(platform().flag(manifest(m1), 'force-new-cluster')).toBe('true');

    // The run ends (failed, as the engine records a step whose worker gave up): what it started is put back.
    const ended: Run = { ...run, status: 'failed', records: run.records.map((r) => ({ ...r, status: 'failed' as const })) };
    const lines = await stepUndo(inventory, pool, store, log)(ended);
    expect(lines).toEqual([`--force-new-cluster taken out of ${manifestOf(m1)} on m1 (the kubelet restarts etcd on the changed manifest): the run left it there, and a later restart of etcd would have forced a new cluster again`]);
    expect(manifest(m1)).toBe(original);
    // The kubelet restarted etcd on it: no ETCD_FORCE_NEW_CLUSTER in what runs now.
    await waitFor('m1\'s etcd running without the flag', async () => {
      const env = etcdEnv(m1);
      return env !== null && env.ETCD_FORCE_NEW_CLUSTER === undefined;
    }, 30_000, 100);
    // Asked again (another end of the same run, a sweeper after a crash): nothing left to put back.
    expect(await stepUndo(inventory, pool, store, log)(ended)).toEqual([]);
  });
});
