import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import { waitFor } from '../../src/lab/proc.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, approveStep, latest, planReplace, textOf, threadOf, waitForRunStatus } from '../support/slack-view.js';

// Alice asks for the replace; Bob approves its steps and the CSRs.
const ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };

type Block = { type: string; block_id?: string; elements?: { action_id: string; value: string }[] };

describe("a replace that brings a rebuilt master back shows its CSRs in the run's thread (lab with the Kubernetes API stand-in)", () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('replace-kube', 96, {
      roles: ROLES,
      lab: { kube: true },
      editInventory(inv) {
        // Bound of the wait for m3's Node: long enough for two clicks, short enough to fail fast.
        inv.clusters[0].kubeReadyWaitSeconds = 90;
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const csrJson = async (name: string) => JSON.parse((await t.lab.kube!.kubectl(['get', 'csr', name, '-o', 'json'])).stdout);

  /** The CSR review messages posted in the run's thread that name `csr`. */
  const reviewsOf = (runTs: string, csr: string): SlackRecord[] =>
    t.slack.records.filter((r) => r.method === 'chat.postMessage' && r.body.thread_ts === runTs && /CSR/.test(String(r.body.text)) && ((r.body.blocks as Block[]) ?? []).some((b) => b.block_id?.startsWith('csr-') && JSON.stringify(b).includes(csr)));

  /** Waits for `csr`'s review message in the run's thread, and Bob clicks its Approve button there: his answer. */
  async function approveInThread(runTs: string, csr: string): Promise<string> {
    const msg = await waitFor(`a review message of ${csr} in the run's thread`, () => reviewsOf(runTs, csr)[0], 60_000, 100);
    for (const b of (latest(t.slack, msg.ts!).body.blocks as Block[]) ?? []) {
      const approve = b.type === 'actions' && /^csr-cr-/.test(b.block_id ?? '') ? b.elements!.find((e) => e.action_id === 'medic_csr_approve') : undefined;
      if (approve && JSON.parse(approve.value).n === csr) {
        return answerAt(t.slack, (await t.click({ user: 'UBOB', messageTs: msg.ts!, actionId: 'medic_csr_approve', blockId: b.block_id!, value: approve.value })).responseUrl);
      }
    }
    throw new Error(`no Approve button for ${csr} in:\n${textOf(latest(t.slack, msg.ts!))}`);
  }

  it("waits for m3's Node, shows its client then its serving CSR in the run's thread, approved there; ends DONE with node m3 Ready", async () => {
    const { ts, runId } = await planReplace(t, 'm3', 'UALICE');
    // The fault: m3's machine was rebuilt (its Node deleted); its kubelet files a client CSR with the bootstrap token.
    const client = await t.lab.kube!.rebuildMaster('m3');
    for (const step of [1, 2]) expect(await approveStep(t, ts, step, 'UBOB')).toContain(`Approved step ${step + 1}`);

    // The last step shows the client CSR in the run's thread, with buttons; the bot approves nothing itself.
    const clientMsg = await waitFor('the client CSR in the thread', () => reviewsOf(ts, client)[0], 120_000, 100);
    expect(textOf(clientMsg)).toContain('Client CSR of node m3, for approval');
    expect(textOf(clientMsg)).toContain(':white_check_mark: passes policy');
    expect((await csrJson(client)).status?.conditions).toBeUndefined();
    expect(await approveInThread(ts, client)).toBe(`:white_check_mark: approved *${client}*`);

    // Issued, the kubelet registers m3 again and files its serving CSR as system:node:m3: shown in the same thread.
    const serving = await waitFor('the serving CSR of m3', () => t.lab.kube!.kubelet('m3').servingCsr, 30_000, 100);
    expect(await approveInThread(ts, serving)).toBe(`:white_check_mark: approved *${serving}*`);
    expect(textOf(reviewsOf(ts, serving)[0]!)).toContain('Serving CSR of node m3, for approval');

    const done = await waitForRunStatus(t.slack, ts, 'DONE');
    expect(done.split('\n')[0]).not.toContain('Kubernetes not yet');
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/Step 9: Wait for node m3 Ready in Kubernetes, its CSRs shown here for approval: node m3 Ready; CSRs approved by <@UBOB> \(after/);
    expect(thread).toContain(`:tada: Run \`${runId}\` finished: every step done.`);
    expect(thread).not.toContain('Kubernetes not yet');
    // Each CSR shown once in the run's thread, though the step looked many times.
    expect([reviewsOf(ts, client).length, reviewsOf(ts, serving).length]).toEqual([1, 1]);

    // kubectl: both approved (by Bob, through the bot) and issued; m3 Ready.
    for (const name of [client, serving]) {
      const c = await csrJson(name);
      expect(c.status.conditions.find((x: { type: string }) => x.type === 'Approved')).toMatchObject({ status: 'True', message: 'Approved by Slack user UBOB with etcd-medic' });
      expect((await t.lab.kube!.kubectl(['get', 'csr', name])).stdout).toMatch(/Approved,Issued$/m);
    }
    const ready = await t.lab.kube!.kubectl(['get', 'node', 'm3', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    expect(ready.stdout.trim()).toBe('True');
    // And etcd: three voters, m3 among them.
    const members = await t.lab.memberList();
    expect(members.map((m) => [m.name, m.status, m.learner]).sort()).toEqual([
      ['m1', 'started', false],
      ['m2', 'started', false],
      ['m3', 'started', false],
    ]);
  }, 300_000);
});
