import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeletFiles } from '../../src/lab/kube/kubelet-host.js';
import { waitFor } from '../../src/lab/proc.js';
import { approveUntilEnded } from '../support/crash-workers.js';
import { kubeletAsideDir, startKubeletsLab } from '../support/kubelets-lab.js';
import type { MedicLab } from '../support/medic-lab.js';
import { planRun, threadOf } from '../support/slack-view.js';

describe('/etcd kubelets renew refuses before it stops a kubelet that could not come back, and names one that does not at once (lab: three kubeadm masters and a worker node)', () => {
  let t: MedicLab;

  beforeAll(async () => {
    // A bound far above what any of these runs takes: a kubelet that does not come back must be named long before it.
    t = await startKubeletsLab('kubelets-preflight', 140, { readyWaitSeconds: 600 });
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  const kube = () => t.lab.kube!;
  const files = (node: string) => kubeletFiles(t.lab.node(node).root);
  /** What an SRE looks at on a node the bot must not have touched: the kubelet's unit, its certificate's file, its kubeconfig, no marker of the run. */
  const untouched = (node: string) => ({ unit: kube().kubelet(node).units.state('kubelet'), cert: realpathSync(files(node).cert), kubeconfig: existsSync(files(node).kubeconfig) });
  const markerOf = (node: string, runId: string) => join(kubeletAsideDir(t, node), `kubelet-renew.${runId}`);
  const ready = async (node: string) => (await kube().kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout.trim();

  it('the Kubernetes API down: the first step refuses before any kubelet is stopped, saying so and what to do', async () => {
    const before = { m1: untouched('m1'), w1: untouched('w1') };
    // The fault: every kube-apiserver is down (their manifests moved away); the load balancer has nothing to send to.
    for (const m of ['m1', 'm2', 'm3']) await kube().stopApiserver(m);
    try {
      const plan = await planRun(t, 'kubelets renew m1 w1', /^Renew the kubelet certificates of m1, w1 in lab/);
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 60_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: FAILED$/);
      expect(thread).toMatch(/refused before the kubelet of m1 was stopped: the Kubernetes API \(127\.0\.140\.100:6443, from [^)]+\) does not answer: connection (refused|reset) by 127\.0\.140\.100:6443; a kubelet restarted now could not file its CSR/);
      expect(thread).toContain('On m1 nothing was stopped or moved. Bring the API back first');
      // Nothing stopped, nothing moved, on either node; no word of a kubelet left NotReady.
      expect({ m1: untouched('m1'), w1: untouched('w1') }).toEqual(before);
      expect(existsSync(markerOf('m1', plan.runId))).toBe(false);
      expect(thread).not.toMatch(/kubelet restarted without its client certificate|its restart did not finish/);
    } finally {
      for (const m of ['m1', 'm2', 'm3']) await kube().startApiserver(m);
    }
  }, 120_000);

  it('the bootstrap token expired on the API side: refused before m1 is stopped, naming the token and how to make a new one', async () => {
    const before = { m1: untouched('m1'), w1: untouched('w1') };
    // The fault: the token in every bootstrap-kubelet.conf is past its expiration; the API server answers 401 to it.
    kube().expireBootstrapToken();
    try {
      const plan = await planRun(t, 'kubelets renew m1 w1', /^Renew the kubelet certificates of m1, w1 in lab/);
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 60_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: FAILED$/);
      expect(thread).toContain(
        `refused before the kubelet of m1 was stopped: the bootstrap token abcdef.… in ${files('m1').bootstrapConfig} on m1 is not one the API server takes (the API server answers 401 Unauthorized to it: it expired or was deleted); without its client certificate that kubelet could not file its CSR. On m1 nothing was stopped or moved. Make a new one (kubeadm: \`kubeadm token create\` on a master`,
      );
      expect({ m1: untouched('m1'), w1: untouched('w1') }).toEqual(before);
      expect(thread).not.toContain('0123456789abcdef');
    } finally {
      kube().expireBootstrapToken(true);
    }
  }, 120_000);

  it("a later node's bootstrap token unknown to the API: the run stops before the first kubelet, naming that node", async () => {
    const before = { m1: untouched('m1'), w1: untouched('w1') };
    // The fault: w1's bootstrap-kubelet.conf holds a token the cluster never had (or one deleted since).
    const conf = files('w1').bootstrapConfig;
    const good = readFileSync(conf, 'utf8');
    writeFileSync(conf, good.replace(/token: \S+/, 'token: zzzzzz.zzzzzzzzzzzzzzzz'));
    try {
      const plan = await planRun(t, 'kubelets renew m1 w1', /^Renew the kubelet certificates of m1, w1 in lab/);
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 60_000);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(header, thread).toMatch(/: FAILED$/);
      expect(thread).toContain(`refused before the kubelet of m1 was stopped: the bootstrap token zzzzzz.… in ${conf} on w1 is not one the API server takes (the API server answers 401 Unauthorized to it`);
      expect({ m1: untouched('m1'), w1: untouched('w1') }).toEqual(before);
    } finally {
      writeFileSync(conf, good);
    }
  }, 120_000);

  it('a kubelet whose service does not come back is named by its own step, the run stopped there, long before the CSR step would give up', async () => {
    // The fault: w1's kubelet binary now exits as soon as it starts (a config it cannot load): its unit flaps.
    kube().breakKubelet('w1');
    const plan = await planRun(t, 'kubelets renew w1', /^Renew the kubelet certificates of w1 in lab/);
    const header = await approveUntilEnded(t, plan.ts, 'UBOB', 90_000);
    const thread = threadOf(t.slack, plan.ts).join('\n');
    expect(header, thread).toMatch(/: FAILED$/);
    expect(thread).toMatch(/the kubelet of w1 did not come back: `systemctl is-active kubelet` said (activating|failed) within 5 s of its start/);
    expect(thread).toContain('On w1: `journalctl -u kubelet -n 50`; once fixed, `systemctl restart kubelet` and approve its CSRs (`/etcd csr lab`). No other kubelet is restarted by this run.');
    // The CSR step never ran (it would have waited 600 s): the run ended on the restart step itself.
    expect(thread).not.toMatch(/Step 2 \(Approve the kubelets/);
    expect(kube().kubelet('w1').units.state('kubelet')).not.toBe('active');

    // Fixed by hand as the message says: the binary back, the unit restarted, its CSRs approved; w1 is Ready again.
    kube().breakKubelet('w1', true);
    kube().kubelet('w1').units.request('kubelet', 'restart');
    const client = await waitFor('the client CSR of w1', () => kube().kubelet('w1').clientCsr, 30_000, 100);
    await kube().kubectl(['certificate', 'approve', client]);
    const serving = await waitFor('the serving CSR of w1', () => kube().kubelet('w1').servingCsr, 30_000, 100);
    await kube().kubectl(['certificate', 'approve', serving]);
    await waitFor('w1 Ready', async () => (await ready('w1')) === 'True', 30_000, 200);
  }, 150_000);

  it('a kubelet that dies after it came up, while its CSRs are waited for, is named in the thread at once and the wait ends then', async () => {
    // The fault: w1's kubelet runs 7 s after its next start (past the restart step's 5 s watch), then dies, and every restart fails at once.
    kube().breakKubelet('w1', false, 7);
    const plan = await planRun(t, 'kubelets renew w1', /^Renew the kubelet certificates of w1 in lab/);
    const header = await approveUntilEnded(t, plan.ts, 'UBOB', 120_000);
    const thread = threadOf(t.slack, plan.ts).join('\n');
    // The restart step saw it running; the CSR step saw it die, said so, and ended without waiting 600 s.
    expect(thread).toMatch(/Step 1: Restart the kubelet of w1 without its client certificate, so it bootstraps again: kubelet of w1 stopped/);
    expect(thread).toMatch(/:x: The kubelet of w1 is not running \(`systemctl is-active kubelet`: (activating|failed|inactive)\) \d+ s into the wait for its CSRs: it files none, and its node stays NotReady\. On w1: `journalctl -u kubelet -n 50`/);
    expect(header, thread).toBe('Renew the kubelet certificates of w1 in lab: DONE: kubelets not all back');
    expect(thread).toMatch(/kubelets not all back: w1: its kubelet is not running \(`systemctl is-active kubelet`: \w+\), NotReady \(seen after [\d.]+ s, \d+ looks?; the wait ends now rather than at its 600 s bound\)/);
    expect(await ready('w1')).not.toBe('True');

    // Put right by hand: the binary back, the unit restarted, its CSRs approved; w1 is Ready again.
    kube().breakKubelet('w1', true);
    kube().kubelet('w1').units.request('kubelet', 'restart');
    const client = await waitFor('the client CSR of w1', () => kube().kubelet('w1').clientCsr, 30_000, 100);
    await kube().kubectl(['certificate', 'approve', client]);
    const serving = await waitFor('the serving CSR of w1', () => kube().kubelet('w1').servingCsr, 30_000, 100);
    await kube().kubectl(['certificate', 'approve', serving]);
    await waitFor('w1 Ready', async () => (await ready('w1')) === 'True', 30_000, 200);
  }, 150_000);
});
