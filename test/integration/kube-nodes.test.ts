import { renameSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { waitFor } from '../../src/lab/proc.js';
import { connectRedis } from '../../src/queue/redis.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, latest, textOf, threadOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };
const IP = (n: number) => `127.0.89.${n}`;

describe('/etcd nodes and the Kubernetes check at the end of a restore, against the lab', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('kube-nodes', 89, {
      roles: ROLES,
      lab: { kube: true },
      editInventory(inv) {
        // A small bound, so a run that ends "Kubernetes not yet" does not wait three minutes.
        inv.clusters[0].kubeReadyWaitSeconds = 8;
        // The same members once more, without Kubernetes access: how an etcd-only setup is configured.
        const { kubeconfig: _k, ...etcdOnly } = structuredClone(inv.clusters[0]);
        inv.clusters.push({ ...etcdOnly, name: 'etcdonly' });
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** `/etcd nodes <cluster>` typed in the channel: the message the worker posts, as text (and its footer, a context block). */
  async function nodesMessage(cluster = 'lab'): Promise<{ text: string; footer: string }> {
    const since = t.slack.lastSeq;
    await t.command(`nodes ${cluster}`, { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Kubernetes (control plane of|not checked for) /.test(String(r.body.text)), 30_000, since);
    const context = (msg.body.blocks as { type: string; elements?: { text: string }[] }[]).find((b) => b.type === 'context');
    return { text: textOf(msg), footer: context?.elements?.map((e) => e.text).join(' ') ?? '' };
  }
  const nodes = async (cluster = 'lab') => (await nodesMessage(cluster)).text;

  async function nodeReady(name: string): Promise<string | null> {
    const r = await t.lab.kube!.kubectl(['get', 'node', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'], { allowFail: true });
    return r.code === 0 ? r.stdout.trim() : null;
  }

  async function memberHex(name: string): Promise<string> {
    // As etcdctl prints it, which is how the bot names members too.
    return (await t.lab.memberList()).find((m) => m.name === name)!.id;
  }

  it('shows three masters Ready with their kubelet and InternalIP, /readyz ok on each, no CSR pending, no drift: as kubectl sees them', async () => {
    const text = await nodes();
    expect(text.split('\n')[0]).toBe('Kubernetes control plane of lab: READY');
    expect(text).toContain('kube-apiserver /readyz ok on every master (3), every master\'s node Ready');
    expect(text).toContain('*Pending CSRs:* 0');
    const kubectl = JSON.parse((await t.lab.kube!.kubectl(['get', 'nodes', '-o', 'json'])).stdout) as { items: { metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string }; addresses: { type: string; address: string }[] } }[] };
    expect(kubectl.items.map((n) => n.metadata.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const n of kubectl.items) {
      const ip = n.status.addresses.find((a) => a.type === 'InternalIP')!.address;
      expect(text).toMatch(new RegExp(`:white_check_mark: node \\*${n.metadata.name}\\* Ready since \\S+Z, [^·]+ ago · kubelet ${n.status.nodeInfo.kubeletVersion} · InternalIP ${ip.replace(/\./g, '\\.')}`));
      expect(text).toMatch(new RegExp(`:white_check_mark: kube-apiserver https://${ip.replace(/\./g, '\\.')}:6443/readyz ok \\(\\d+ ms\\)`));
    }
    expect(text).toContain("every member's peer URL is an address of its node");
    for (const m of ['m1', 'm2', 'm3']) expect(text).toContain(`member ${m}: peer URL https://${IP(Number(m[1]))}:2380 is an address of node ${m} (InternalIP ${IP(Number(m[1]))})`);
  });

  it('names a peer URL that is not an address of its node, with the etcdctl command that fixes it', async () => {
    // The fault: m2 came back with another address (as a rebuilt master does), but etcd's member list still has the old one.
    const patch = (ip: string) =>
      t.lab.kube!.request('PATCH', '/api/v1/nodes/m2/status', { status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: 'm2' }] } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
    expect((await patch(IP(9))).status).toBe(200);
    try {
      const text = await nodes();
      const hex = await memberHex('m2');
      expect(text).toContain('*etcd peer URLs vs node addresses:* 1 mismatch');
      expect(text).toContain(`:warning: member m2 (\`${hex}\`): peer URL https://${IP(2)}:2380 is not an address of node m2 (InternalIP ${IP(9)})`);
      expect(text).toContain(`Fix: \`etcdctl member update ${hex} --peer-urls=https://${IP(9)}:2380\` and the member's --initial-advertise-peer-urls, or the node's address if the node is the one that is wrong.`);
      // The others still agree, and what kubectl shows is what the bot compared against.
      expect(text).toContain(`member m1: peer URL https://${IP(1)}:2380 is an address of node m1`);
      expect((await t.lab.kube!.kubectl(['get', 'node', 'm2', '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}'])).stdout).toBe(IP(9));
    } finally {
      await patch(IP(2));
    }
    expect(await nodes()).toContain("every member's peer URL is an address of its node");
  });

  it('shows a master whose kube-apiserver is stopped failing /readyz and its node NotReady; with every API server down, the reason within the call timeout and each master still asked', async () => {
    await t.lab.kube!.stopApiserver('m2');
    try {
      const text = await nodes();
      expect(text.split('\n')[0]).toBe('Kubernetes control plane of lab: NOT READY');
      expect(text).toContain(`:x: kube-apiserver https://${IP(2)}:6443/readyz: connection refused (${IP(2)}:6443): the API server is not running or not listening there`);
      expect(text).toMatch(/• node m2 NotReady since \S+Z, \d+s ago \(NodeStatusUnknown: Kubelet stopped posting node status\.\)/);
      expect(text).toContain(`:white_check_mark: kube-apiserver https://${IP(1)}:6443/readyz ok`);
      expect(await nodeReady('m2')).toBe('Unknown');

      // Every API server down: the load balancer has nothing to send to.
      await t.lab.kube!.stopApiserver('m1');
      await t.lab.kube!.stopApiserver('m3');
      const { text: down, footer } = await nodesMessage();
      expect(down).toMatch(/\*API\* https:\/\/127\.0\.89\.100:6443: :x: connection reset by 127\.0\.89\.100:6443/);
      for (const n of [1, 2, 3]) expect(down).toContain(`:x: kube-apiserver https://${IP(n)}:6443/readyz: connection refused (${IP(n)}:6443)`);
      expect(down).toContain('node unknown (the nodes could not be listed)');
      expect(down).toContain('*etcd peer URLs vs node addresses:* not checked: the nodes could not be listed');
      // Within the call timeout (5 s): a refused connection is known at once.
      expect(Number(/checked \S+ in (\d+) ms/.exec(footer)![1])).toBeLessThan(5000);
    } finally {
      for (const h of ['m1', 'm2', 'm3']) await t.lab.kube!.startApiserver(h);
    }
    await waitFor('m2 Ready again', async () => (await nodeReady('m2')) === 'True', 10_000, 200);
  });

  it('says what to configure for a cluster without a kubeconfig', async () => {
    const text = await nodes('etcdonly');
    expect(text).toBe(
      ':information_source: Kubernetes not checked for etcdonly: cluster etcdonly has no Kubernetes access configured: set clusters[].kubeconfig in the inventory to a kubeconfig file (or "in-cluster" when the bot runs in that cluster)',
    );
  });

  /** The fault: two of three members die (SIGKILL) and their data dirs are gone. */
  async function loseMajority(): Promise<void> {
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    }
  }

  /** `/etcd restore-quorum lab`, both gates approved by a second person: the plan message's ts and the run. */
  async function restoreQuorum(): Promise<{ ts: string; runId: string }> {
    const since = t.slack.lastSeq;
    await t.command('restore-quorum lab', { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^(Restore quorum of lab|\/etcd restore.* refused)/.test(String(r.body.text)), 60_000, since);
    const runId = /run (r-[0-9a-f]{8})/.exec(String(msg.body.text))![1]!;
    for (const step of [1, 2]) {
      const g = await waitForGate(t.slack, msg.ts!, step);
      const c = await t.click({ user: 'UBOB', messageTs: msg.ts!, actionId: 'medic_approve', blockId: g.blockId, value: g.approve });
      expect(await answerAt(t.slack, c.responseUrl)).toContain(`Approved step ${step + 1}`);
    }
    return { ts: msg.ts!, runId };
  }

  it('a restore-quorum with a kube-apiserver still down and a rebuilt master waiting for its CSR ends "etcd healthy, Kubernetes not yet" and offers /etcd csr', async () => {
    // The faults: m3's kube-apiserver stays stopped; m2 was rebuilt, its Node gone until its client CSR is approved.
    await t.lab.kube!.stopApiserver('m3');
    const clientCsr = await t.lab.kube!.rebuildMaster('m2');
    await loseMajority();

    try {
      const { ts } = await endsKubernetesNotYet();
      // The grown-back master's CSR waits in the run's thread for approval (posted once, though the check looked many times).
      const shown = t.slack.records.filter((r) => r.method === 'chat.postMessage' && r.body.thread_ts === ts && JSON.stringify(r.body.blocks ?? []).includes(clientCsr));
      expect(shown.map((r) => String(r.body.text))).toEqual([expect.stringContaining('CSR of node m2, for approval')]);
    } finally {
      // Put Kubernetes right for the next run: m3's API server back, m2's certificates approved.
      await t.lab.kube!.startApiserver('m3');
      await t.lab.kube!.kubectl(['certificate', 'approve', clientCsr]);
      const serving = await waitFor('the serving CSR of m2', () => t.lab.kube!.kubelet('m2').servingCsr, 15_000, 100);
      await t.lab.kube!.kubectl(['certificate', 'approve', serving]);
      await waitFor('m2 and m3 Ready', async () => (await nodeReady('m2')) === 'True' && (await nodeReady('m3')) === 'True', 15_000, 200);
    }
  }, 300_000);

  async function endsKubernetesNotYet(): Promise<{ ts: string }> {
    const { ts, runId } = await restoreQuorum();
    const plan = textOf(latest(t.slack, ts));
    expect(plan).toContain(`Check Kubernetes: kube-apiserver ready on every master, control-plane nodes Ready`);
    expect(plan).toContain(`GET /readyz on https://${IP(1)}:6443, https://${IP(2)}:6443, https://${IP(3)}:6443; nodes m1, m2, m3 Ready`);
    expect(plan).toContain('Polls for up to 8 s; changes nothing, and does not fail the run');

    const done = await waitForRunStatus(t.slack, ts, 'DONE: etcd healthy, Kubernetes not yet', 240_000);
    // etcd is back whole, and nothing was rolled back for Kubernetes' sake.
    expect((await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(done).toMatch(/\*Ended\* \S+: every step done; etcd healthy, Kubernetes not yet: kube-apiserver on m3/);
    const thread = threadOf(t.slack, ts);
    const last = thread[thread.length - 1]!;
    expect(last).toMatch(new RegExp(`^:warning: Run \`${runId}\` finished: every step done; etcd healthy, Kubernetes not yet: `));
    expect(last).toContain(`kube-apiserver on m3 (https://${IP(3)}:6443) not ready: connection refused (${IP(3)}:6443)`);
    expect(last).toContain('master m2 has no Node object (its kubelet has not registered)');
    expect(last).toMatch(/node m3 NotReady since \S+Z, [^(]+ ago \(NodeStatusUnknown/);
    expect(last).toContain('1 pending CSR (checked for ');
    expect(last).toContain('Review the CSRs with `/etcd csr lab`.');

    // The same on the incident's timeline.
    const redis = connectRedis(t.env.REDIS_URL!);
    try {
      const incidents = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
      const inc = (await incidents.current('CINCIDENT'))!;
      const entries = (await incidents.entries(inc.id)).filter((e) => e.runId === runId);
      expect(entries.at(-1)!.text).toBe(last);

      // The button under the check's line runs what typing `/etcd csr lab` runs, as whoever clicks.
      const offer = t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.thread_ts === ts && JSON.stringify(r.body.blocks ?? []).includes('medic_command')).at(-1)!;
      const actions = (offer.body.blocks as { type: string; block_id: string; elements: { action_id: string; value: string; text: { text: string } }[] }[]).find((b) => b.type === 'actions')!;
      expect(actions.elements[0]!.text.text).toBe('Review 1 pending CSR');
      expect(JSON.parse(actions.elements[0]!.value)).toEqual({ c: 'csr', a: ['lab'] });
      const clicked = await answerAt(t.slack, (await t.click({ user: 'UALICE', messageTs: offer.ts!, actionId: 'medic_command', blockId: actions.block_id, value: actions.elements[0]!.value })).responseUrl);
      // A typed command's answer is the ack itself (the HTTP response to Slack's request).
      const typed = String(JSON.parse((await t.command('csr lab', { user: 'UALICE' })).body).text);
      const noJob = (s: string) => s.replace(/\(job `[^`]+`\)/, '(job)');
      expect(noJob(clicked)).toBe(noJob(typed));
      await waitFor('the click on the timeline', async () => (await incidents.entries(inc.id)).some((e) => e.actor === 'UALICE' && e.text === '/etcd csr lab (button)'), 5_000, 100);
    } finally {
      redis.disconnect();
    }

    // `/etcd nodes` says the same: the rebuilt master is missing, its CSR waits.
    const now = await nodes();
    expect(now).toContain(`:x: *no Node object*: the inventory names this master, but no node is registered under its name or address ${IP(2)}`);
    expect(now).toContain('*Pending CSRs:* 1 · review them with `/etcd csr lab`');
    return { ts };
  }

  it('a restore-quorum on a healthy Kubernetes ends with the check passed: /readyz ok on every master, every node Ready', async () => {
    await loseMajority();
    const { ts, runId } = await restoreQuorum();
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/:white_check_mark: Step 13: Check Kubernetes: [^:]+: Kubernetes ready: kube-apiserver \/readyz ok on m1, m2, m3; nodes m1, m2, m3 Ready \(after \d+\.\d s, \d+ looks?\)\./);
    expect(thread).toContain(`:tada: Run \`${runId}\` finished: every step done.`);
    expect(await nodes()).toMatch(/^Kubernetes control plane of lab: READY/);
  }, 300_000);
});
