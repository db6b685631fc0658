import { X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeletFiles } from '../../src/lab/kube/kubelet-host.js';
import { waitFor } from '../../src/lab/proc.js';
import { ackText } from '../../src/lab/signed-requests.js';
import { approveUntilEnded, WorkerChain } from '../support/crash-workers.js';
import { kubeletAsideDir, startKubeletsLab } from '../support/kubelets-lab.js';
import type { MedicLab } from '../support/medic-lab.js';
import { planRun, threadOf } from '../support/slack-view.js';

describe('/etcd kubelets renew (lab: three kubeadm masters and a worker node, each kubelet a unit of its host)', () => {
  let t: MedicLab;
  let chain: WorkerChain | null = null;

  beforeAll(async () => {
    // The bot runs here; workers run as their own processes, so that one can die mid-step.
    t = await startKubeletsLab('kubelets-renew', 109, { readyWaitSeconds: 60, botOnly: true });
  }, 120_000);
  afterAll(async () => {
    await chain?.stop();
    await t?.stop();
  });

  const kube = () => t.lab.kube!;
  const asideDir = (node: string) => kubeletAsideDir(t, node);
  const asideOf = (node: string, runId: string) => readdirSync(asideDir(node)).filter((f) => f.endsWith(`.${runId}`)).sort();
  /** The certificate (PEM) kubelet-client-current.pem leads to on a host, and where it leads. */
  const currentCert = (node: string) => {
    const f = kubeletFiles(t.lab.node(node).root).cert;
    const real = realpathSync(f);
    return { real, pem: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(readFileSync(real, 'utf8'))![0] };
  };
  const ready = async (node: string) => (await kube().kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout.trim();
  const describeChain = () => chain?.output() ?? '';
  /** Worker processes for one test: those of an earlier test (which may have failed half-way) are stopped first. */
  async function workers(faults: Record<string, string>[], beforeNext?: (k: number) => Promise<void>): Promise<WorkerChain> {
    await chain?.stop();
    chain = new WorkerChain(t.env, faults, beforeNext);
    return chain;
  }

  it('refuses a node that is not in the inventory, and an unknown cluster, saying what to type; nothing is queued', async () => {
    const unknown = ackText((await t.command('kubelets renew w9', { user: 'UALICE' })).body);
    expect(unknown).toContain('no node "w9" in lab (its nodes: m1, m2, m3, w1; clusters: lab): name some of those, or none for all');
    expect(unknown).toContain('Usage: `/etcd kubelets renew [cluster] [node…]`');

    const cluster = ackText((await t.command('kubelets renew prod m1', { user: 'UALICE' })).body);
    expect(cluster).toContain('no node "prod" in lab (its nodes: m1, m2, m3, w1; clusters: lab)');

    const verb = ackText((await t.command('kubelets rotate', { user: 'UALICE' })).body);
    expect(verb).toContain('it can `renew` their certificates');
    expect(t.slack.records.filter((r) => r.method === 'chat.postMessage' && /Renew the kubelet/.test(String(r.body.text)))).toHaveLength(0);
  });

  it('renews a master and a worker whose client certificates expired: approved, old files aside (not deleted), CSR waves approved and shown, every node Ready', async () => {
    // The fault: the kubelets of m1 and w1 hold expired client certificates; their Nodes are NotReady.
    const expired = { m1: await kube().expireKubeletClient('m1'), w1: await kube().expireKubeletClient('w1') };
    expect([await ready('m1'), await ready('w1')]).toEqual(['Unknown', 'Unknown']);
    const oldFiles = { m1: currentCert('m1').real, w1: currentCert('w1').real };

    await workers([]);
    const plan = await planRun(t, 'kubelets renew m1 w1', /^Renew the kubelet certificates of m1, w1 in lab/, 'UALICE');
    const { ts } = plan;
    const runId = plan.runId || /r-[0-9a-f]{8}/.exec(JSON.stringify(plan.msg.body))![0];
    const header = await approveUntilEnded(t, ts, 'UBOB', 90_000, describeChain);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(header, thread).toMatch(/: DONE$/);

    for (const node of ['m1', 'w1'] as const) {
      // Moved aside under the run's name, never deleted: the link to the expired certificate and the kubeconfig.
      expect(asideOf(node, runId)).toEqual([`kubelet-client-current.pem.${runId}`, `kubelet-renew.${runId}`, `kubelet.conf.${runId}`]);
      const kept = join(asideDir(node), `kubelet-client-current.pem.${runId}`);
      expect(lstatSync(kept).isSymbolicLink()).toBe(true);
      expect(realpathSync(kept)).toBe(oldFiles[node]);
      expect(readFileSync(kept, 'utf8')).toContain(expired[node].trim());
      // The kubelet bootstrapped: a new certificate, valid now, in a new file.
      const now = currentCert(node);
      expect(now.real).not.toBe(oldFiles[node]);
      expect(new Date(new X509Certificate(now.pem).validTo).getTime()).toBeGreaterThan(Date.now());
      expect(kube().kubelet(node).units.state('kubelet')).toBe('active');
    }
    // Each wave says which CSRs were approved for which node: both client CSRs, then both serving CSRs.
    const waves = thread.split('\n').filter((l) => /Wave \d+: approved/.test(l));
    expect(waves.join('\n'), thread).toMatch(/kubelet client for m1/);
    expect(waves.join('\n')).toMatch(/kubelet client for w1/);
    expect(waves.join('\n')).toMatch(/kubelet serving for m1/);
    expect(waves.join('\n')).toMatch(/kubelet serving for w1/);
    expect(waves[0]).toContain('for <@UBOB>');
    expect(thread).toMatch(/m1, w1 Ready; 4 kubelet CSRs of theirs approved since their kubelets were restarted/);
    // kubectl: each approved for Bob through the bot, issued; every node Ready.
    const csrs = JSON.parse((await kube().kubectl(['get', 'csr', '-o', 'json'])).stdout).items as { metadata: { name: string }; spec: { username: string }; status: { conditions?: { type: string; message: string }[]; certificate?: string } }[];
    const ours = csrs.filter((c) => waves.join('\n').includes(c.metadata.name));
    expect(ours).toHaveLength(4);
    for (const c of ours) {
      expect(c.status.conditions?.find((x) => x.type === 'Approved')?.message).toBe('Approved by Slack user UBOB with etcd-medic');
      expect(c.status.certificate).toBeTruthy();
    }
    for (const node of ['m1', 'm2', 'm3', 'w1']) expect(await ready(node)).toBe('True');
  }, 120_000);

  it('a worker killed with the kubelet stopped and its files aside, and another right after it started it: no second generation moved aside, the kubelet running, the node Ready', async () => {
    const expired = await kube().expireKubeletClient('m2');
    const oldFile = currentCert('m2').real;
    let runId = '';
    let stoppedAtDeath = '';
    let secondGeneration = '';
    const faults: Record<string, string>[] = [
      // The first worker dies right after moving m2's files aside, before starting its kubelet again.
      { MEDIC_FAULT_KILL_AT: 'kubelet-aside' },
      // The second resumes the step, starts the kubelet and dies before recording the step.
      { MEDIC_FAULT_KILL_AFTER: 'kubelet-rebootstrap' },
    ];
    const chain = await workers(faults, async (k) => {
      if (k === 1) stoppedAtDeath = kube().kubelet('m2').units.state('kubelet');
      if (k === 2) {
        // Meanwhile the restarted kubelet's client CSR is approved by hand (kubectl): m2 now holds a new certificate, which a step run again must not move aside.
        const client = await waitFor('the client CSR of m2', () => kube().kubelet('m2').clientCsr, 30_000, 100);
        await kube().kubectl(['certificate', 'approve', client]);
        await waitFor('m2 to write its new certificate', () => existsSync(kubeletFiles(t.lab.node('m2').root).cert) && currentCert('m2').real !== oldFile, 30_000, 100);
        secondGeneration = currentCert('m2').real;
      }
    });
    const plan = await planRun(t, 'kubelets renew lab m2', /^Renew the kubelet certificates of m2 in lab/, 'UALICE');
    const { ts } = plan;
    runId = plan.runId || /r-[0-9a-f]{8}/.exec(JSON.stringify(plan.msg.body))![0];
    const header = await approveUntilEnded(t, ts, 'UBOB', 90_000, describeChain);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(header, `${thread}\n${describeChain()}`).toMatch(/: DONE$/);
    expect(chain.exits().slice(0, 2)).toEqual(['SIGKILL', 'SIGKILL']);
    // The first death left the kubelet stopped; the step run again started it, and moved nothing the second and third time.
    expect(stoppedAtDeath).toBe('inactive');
    expect(asideOf('m2', runId)).toEqual([`kubelet-client-current.pem.${runId}`, `kubelet-renew.${runId}`, `kubelet.conf.${runId}`]);
    expect(readFileSync(join(asideDir('m2'), `kubelet-client-current.pem.${runId}`), 'utf8')).toContain(expired.trim());
    expect(secondGeneration).not.toBe('');
    expect(currentCert('m2').real).toBe(secondGeneration);
    expect(thread).toMatch(/its files were already aside from an earlier attempt \(nothing moved now\); started/);
    expect(kube().kubelet('m2').units.state('kubelet')).toBe('active');
    // Its serving CSR came after; the bot approved it in a wave; m2 is Ready.
    expect(thread).toMatch(/Wave \d+: approved .*kubelet serving for m2/);
    expect(await ready('m2')).toBe('True');
  }, 150_000);
});
