import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, lstatSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeletFiles } from '../../src/lab/kube/kubelet-host.js';
import { waitFor } from '../../src/lab/proc.js';
import { approveUntilEnded, WorkerChain } from '../support/crash-workers.js';
import { kubeletAsideDir, startKubeletsLab } from '../support/kubelets-lab.js';
import type { MedicLab } from '../support/medic-lab.js';
import { planRun, threadOf } from '../support/slack-view.js';

describe('/etcd kubelets renew under attack: workers killed mid-script, tokens expiring after the check, hostile CSRs mid-wave (lab: three kubeadm masters and a worker node)', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes, so that one can die mid-step.
    // A short bound: a run that wrongly waits for a kubelet that cannot come back ends within the test's bound, and fails its assertions.
    t = await startKubeletsLab('kubelets-attack', 169, { readyWaitSeconds: 30, botOnly: true });
  }, 120_000);
  afterAll(async () => {
    await chain?.stop();
    await t?.stop();
  });

  const kube = () => t.lab.kube!;
  const files = (node: string) => kubeletFiles(t.lab.node(node).root);
  const asideDir = (node: string) => kubeletAsideDir(t, node);
  const asideOf = (node: string, runId: string) => (existsSync(asideDir(node)) ? readdirSync(asideDir(node)).filter((f) => f.includes(`.${runId}`)).sort() : []);
  const there = (path: string) => {
    try {
      lstatSync(path);
      return true;
    } catch {
      return false;
    }
  };
  const ready = async (node: string) => (await kube().kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout.trim();
  const describeChain = () => chain?.output() ?? '';
  async function workers(faults: Record<string, string>[], beforeNext?: (k: number) => Promise<void>): Promise<WorkerChain> {
    await chain?.stop();
    chain = new WorkerChain(t.env, faults, beforeNext);
    return chain;
  }
  const runIdOf = (plan: Awaited<ReturnType<typeof planRun>>) => plan.runId || /r-[0-9a-f]{8}/.exec(JSON.stringify(plan.msg.body))![0];

  it('a worker killed mid-script with the kubelet stopped and its certificate aside, and the token expired before the next one resumes: the refusal puts the certificate back and starts the kubelet, and says so', async () => {
    const w1 = files('w1');
    const oldCert = realpathSync(w1.cert);
    // The fault that holds the script where the worker is to die: a stalled disk under w1's kubeconfig (its `mv` of kubelet.conf hangs).
    const stall = join(t.lab.node('w1').binDir, 'mv');
    writeFileSync(stall, '#!/bin/bash\ncase "$1" in *kubelet.conf) sleep 600;; esac\nexec /bin/mv "$@"\n');
    chmodSync(stall, 0o755);
    let runId = '';
    let atDeath = { unit: '', certAside: false, kubeconfig: false };
    try {
      const chain = await workers([{}, {}], async (k) => {
        if (k !== 1) return;
        rmSync(stall, { force: true });
        // The second fault, while no worker runs: the bootstrap token expires (a kubeadm token lives 24 h).
        kube().expireBootstrapToken();
      });
      const plan = await planRun(t, 'kubelets renew w1', /^Renew the kubelet certificates of w1 in lab/, 'UALICE');
      runId = runIdOf(plan);
      const certAside = join(asideDir('w1'), `kubelet-client-current.pem.${runId}`);
      const ended = approveUntilEnded(t, plan.ts, 'UBOB', 120_000, describeChain);
      // The worker dies (SIGKILL) once the kubelet is stopped and its certificate link is aside, its script stalled on the kubeconfig.
      await waitFor('w1 stopped with its certificate aside', () => kube().kubelet('w1').units.state('kubelet') === 'inactive' && there(certAside), 60_000, 100);
      atDeath = { unit: kube().kubelet('w1').units.state('kubelet'), certAside: there(certAside), kubeconfig: there(w1.kubeconfig) };
      chain.current!.child.kill('SIGKILL');
      const header = await ended;
      const thread = threadOf(t.slack, plan.ts).join('\n');
      expect(atDeath).toEqual({ unit: 'inactive', certAside: true, kubeconfig: true });
      expect(header, `${thread}\n${describeChain()}`).toMatch(/: FAILED$/);
      // Said as it is: the earlier attempt had stopped the kubelet, and what it moved went back.
      expect(thread).toContain('refused to go on with the kubelet of w1: the bootstrap token abcdef.… in');
      expect(thread).toContain('An earlier attempt of this step was cut off after it had stopped that kubelet: its files put back where they were and it was started again (active): nothing was renewed on this node');
      expect(thread).not.toContain('On w1 nothing was stopped or moved');
      // On w1: the kubelet runs on its old certificate and kubeconfig; nothing of the run is left aside.
      expect(kube().kubelet('w1').units.state('kubelet')).toBe('active');
      expect(realpathSync(w1.cert)).toBe(oldCert);
      expect(there(w1.kubeconfig)).toBe(true);
      expect(asideOf('w1', runId)).toEqual([]);
      await waitFor('w1 Ready on its old certificate', async () => (await ready('w1')) === 'True', 30_000, 200);
    } finally {
      rmSync(stall, { force: true });
      kube().expireBootstrapToken(true);
      // Whatever this test saw, the next ones start from w1 as it was: its files back, its kubelet running.
      for (const [aside, place] of [[`kubelet-client-current.pem.${runId}`, w1.cert], [`kubelet.conf.${runId}`, w1.kubeconfig]] as const) {
        if (runId && there(join(asideDir('w1'), aside)) && !there(place)) renameSync(join(asideDir('w1'), aside), place);
      }
      if (kube().kubelet('w1').units.state('kubelet') !== 'active') kube().kubelet('w1').units.request('kubelet', 'start');
    }
  }, 180_000);

  it('the bootstrap token expires between the move aside and the start (the worker killed there): the step fails at once naming the token and the way back, which works', async () => {
    const w1 = files('w1');
    const oldCert = realpathSync(w1.cert);
    try {
      await workers([{ MEDIC_FAULT_KILL_AT: 'kubelet-aside' }], async (k) => {
        // Between the first worker's death (files aside, kubelet stopped) and the next one's start: the token expires.
        if (k === 1) kube().expireBootstrapToken();
      });
      const plan = await planRun(t, 'kubelets renew w1', /^Renew the kubelet certificates of w1 in lab/, 'UALICE');
      const runId = runIdOf(plan);
      const header = await approveUntilEnded(t, plan.ts, 'UBOB', 120_000, describeChain);
      const thread = threadOf(t.slack, plan.ts).join('\n');
      // Not a wait to the CSR step's bound that ends "NotReady": the restart step itself fails, naming why.
      expect(header, `${thread}\n${describeChain()}`).toMatch(/: FAILED$/);
      expect(thread).toContain('the kubelet of w1 was started without its client certificate, but the bootstrap token abcdef.… in');
      expect(thread).toContain('is not one the API server takes (the API server answers 401 Unauthorized to it: it expired or was deleted)');
      expect(thread).not.toMatch(/Step 2 \(Approve the kubelets/);
      const back = /`(mv \S+ \S+ && mv \S+ \S+ && systemctl restart kubelet)`/.exec(thread)?.[1];
      expect(back, thread).toBeTruthy();
      expect(back).toContain(`kubelet-client-current.pem.${runId} ${w1.cert}`);

      // The way back the thread gives, run on w1 as an SRE would: its old certificate back, Ready again.
      // (Not blocking this process: the lab's systemd stand-in that carries out the restart runs in it.)
      await promisify(execFile)('bash', ['-c', back!], { env: { ...process.env, PATH: `${t.lab.node('w1').binDir}:${process.env.PATH}` }, timeout: 60_000 });
      expect(realpathSync(w1.cert)).toBe(oldCert);
      await waitFor('w1 Ready on its old certificate', async () => (await ready('w1')) === 'True', 30_000, 200);
    } finally {
      kube().expireBootstrapToken(true);
    }
  }, 180_000);

  it('hostile CSRs filed in the middle of a wave (another node, extra usages, a serving CSR naming another node): none approved, the run only approves the kubelet\'s own', async () => {
    await workers([]);
    const plan = await planRun(t, 'kubelets renew w1', /^Renew the kubelet certificates of w1 in lab/, 'UALICE');
    const ended = approveUntilEnded(t, plan.ts, 'UBOB', 120_000, describeChain);
    // Once w1's restarted kubelet filed its client CSR, someone holding the bootstrap token (or a node's credentials) files these.
    await waitFor('the client CSR of w1', () => kube().kubelet('w1').clientCsr, 60_000, 100);
    const hostile = {
      // A node not in the run (it passes the policy: only the run must not approve it).
      otherNode: (await kube().fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m3', o: ['system:nodes'] } })).metadata.name as string,
      // w1's identity, but usable as a server certificate too.
      extraUsage: (await kube().fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:w1', o: ['system:nodes'] }, usages: ['digital signature', 'client auth', 'server auth'] })).metadata.name as string,
      // A serving CSR from w1's credentials naming m1's address.
      foreignSan: (await kube().fileCsr({ as: { user: 'system:node:w1', groups: ['system:nodes'] }, subject: { cn: 'system:node:w1', o: ['system:nodes'], dns: ['w1'], ips: [t.lab.node('m1').ip] }, signerName: 'kubernetes.io/kubelet-serving', usages: ['digital signature', 'server auth'] })).metadata.name as string,
    };
    // A person, seeing w1's flagged CSRs in the thread, denies them (what the thread asks for); the run then ends.
    for (const name of [hostile.extraUsage, hostile.foreignSan]) {
      await t.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.thread_ts === plan.ts && String(r.body.text).includes(name) && /Not approved by the bot/.test(String(r.body.text)), 60_000);
      await kube().kubectl(['certificate', 'deny', name]);
    }
    const header = await ended;
    const thread = threadOf(t.slack, plan.ts).join('\n');
    expect(header, thread).toMatch(/: DONE$/);
    const csrs = JSON.parse((await kube().kubectl(['get', 'csr', '-o', 'json'])).stdout).items as { metadata: { name: string }; status: { conditions?: { type: string; message?: string }[] } }[];
    const approvedByBot = csrs.filter((c) => c.status.conditions?.some((x) => x.type === 'Approved' && /etcd-medic/.test(x.message ?? ''))).map((c) => c.metadata.name);
    for (const name of Object.values(hostile)) expect(approvedByBot, thread).not.toContain(name);
    expect(approvedByBot).toContain(kube().kubelet('w1').clientCsr);
    expect(approvedByBot).toContain(kube().kubelet('w1').servingCsr);
    // The flagged ones were said with why; the one for a node not in the run was not touched at all.
    expect(thread).toMatch(/extra usage: server auth/);
    expect(thread).toMatch(new RegExp(`SAN ${t.lab.node('m1').ip.replace(/\./g, '\\.')} belongs to node m1, not w1`));
    expect(thread).not.toContain(hostile.otherNode);
    expect(csrs.find((c) => c.metadata.name === hostile.otherNode)!.status.conditions ?? []).toEqual([]);
    expect(await ready('w1')).toBe('True');
  }, 180_000);
});
