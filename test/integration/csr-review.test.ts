import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { dirname, join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStore, type TimelineEntry } from '../../src/incident/store.js';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import type { KubeLab } from '../../src/lab/kube/index.js';
import { ackText } from '../../src/lab/signed-requests.js';
import { waitFor } from '../../src/lab/proc.js';
import { createLogger } from '../../src/log.js';
import { connectRedis } from '../../src/queue/redis.js';
import { SlackPoster } from '../../src/slack/poster.js';
import { startWorker, type MedicWorker } from '../../src/worker/worker.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, latest, textOf, threadOf } from '../support/slack-view.js';
import { waitForStatusAnswer } from '../../src/lab/slack-view.js';

// UBOB approves; UALICE runs incidents; UEVE and UCAROL may only look.
const ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };
const CHANNEL = 'CINCIDENT';
const DARK_PORT = 6449; // nothing listens there: the "dark" cluster's API server is down

type Block = { type: string; block_id?: string; elements?: { action_id: string; value: string; text: { text: string } }[] };

describe('CSR review and approval in Slack, and the incident watch (lab with the Kubernetes API stand-in)', () => {
  let t: MedicLab;
  let kube: KubeLab;
  let store: IncidentStore;
  let redis: ReturnType<typeof connectRedis>;
  let incidentId: string;
  let rootTs: string;

  const csrJson = async (name: string) => JSON.parse((await kube.kubectl(['get', 'csr', name, '-o', 'json'])).stdout);
  const condition = (o: any, type: string) => (o.status?.conditions ?? []).find((c: any) => c.type === type);
  const bootstrapCsr = (node: string) => kube.fileCsr({ as: 'bootstrap', subject: { cn: `system:node:${node}`, o: ['system:nodes'] } }).then((c) => c.metadata.name as string);
  const entries = async (): Promise<TimelineEntry[]> => store.entries(incidentId);

  /** `/etcd csr [args]` typed by `user`; the message it posts in the channel. */
  async function listCsrs(user = 'UCAROL', args = ''): Promise<SlackRecord> {
    const since = t.slack.lastSeq;
    await t.command(`csr ${args}`.trim(), { user });
    return t.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === CHANNEL && !r.body.thread_ts && /^(Pending CSRs in lab|No pending CSRs in lab)/.test(String(r.body.text)), 20_000, since);
  }

  /** The Approve / Deny buttons of one CSR's row, as the message shows them now (null: the row has none). */
  function rowButtons(ts: string, name: string): { blockId: string; approve: string; deny: string; approveText: string } | null {
    for (const b of (latest(t.slack, ts).body.blocks as Block[]) ?? []) {
      if (b.type !== 'actions' || !/^csr-cr-/.test(b.block_id ?? '')) continue;
      const approve = b.elements!.find((e) => e.action_id === 'medic_csr_approve')!;
      const deny = b.elements!.find((e) => e.action_id === 'medic_csr_deny')!;
      if (JSON.parse(approve.value).n === name) return { blockId: b.block_id!, approve: approve.value, deny: deny.value, approveText: approve.text.text };
    }
    return null;
  }

  function approveAll(ts: string): { blockId: string; value: string; text: string } | null {
    const b = ((latest(t.slack, ts).body.blocks as Block[]) ?? []).find((x) => x.type === 'actions' && /^csrall-/.test(x.block_id ?? ''));
    return b ? { blockId: b.block_id!, value: b.elements![0]!.value, text: b.elements![0]!.text.text } : null;
  }

  /** `user` clicks a CSR button; the ephemeral answer they get. */
  async function click(user: string, ts: string, actionId: string, blockId: string, value: string): Promise<string> {
    return answerAt(t.slack, (await t.click({ user, messageTs: ts, actionId, blockId, value })).responseUrl);
  }

  /** Waits until the message shows `pattern` (it is redrawn after each decision). */
  const messageShows = (ts: string, pattern: RegExp) => waitFor(`message ${ts} to show ${pattern}`, () => pattern.test(textOf(latest(t.slack, ts))), 15_000, 50);

  beforeAll(async () => {
    t = await startMedicLab('csr', 88, {
      roles: ROLES,
      lab: { kube: true },
      editInventory: (inv) => {
        const lab = inv.clusters[0];
        // A cluster whose kubeconfig names a port nothing listens on, and one without a kubeconfig.
        const admin = parseYaml(readFileSync(lab.kubeconfig, 'utf8'));
        for (const c of admin.clusters) c.cluster.server = c.cluster.server.replace(/:6443$/, `:${DARK_PORT}`);
        const dark = join(dirname(lab.kubeconfig), 'dark.conf');
        writeFileSync(dark, stringify(admin), { mode: 0o600 });
        const { kubeconfig: _none, ...etcdOnly } = structuredClone(lab);
        inv.clusters.push({ ...structuredClone(lab), name: 'dark', kubeconfig: dark }, { ...etcdOnly, name: 'nokube' });
        inv.defaultCluster = 'lab';
      },
    });
    kube = t.lab.kube!;
    redis = connectRedis(t.config.settings.redisUrl);
    store = new IncidentStore(redis, t.config.settings.queuePrefix, t.config.settings.hmacKey);
    // The incident whose timeline every decision goes on (and whose thread the watch posts to).
    await t.command('incident start node certificates expired', { user: 'UALICE' });
    const root = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).startsWith('Incident: node certificates'), 15_000);
    rootTs = root.ts!;
    incidentId = (await store.current(CHANNEL))!.id;
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  it('shows each pending CSR with what a reviewer needs; one is approved and another denied from the same message, as kubectl, the message and the timeline agree', async () => {
    // Nothing pending yet (the lab's kubelets joined with issued certificates): said so, no buttons.
    const none = await listCsrs();
    expect(textOf(none)).toContain(':white_check_mark: No pending CSRs in *lab*: nothing waits for approval.');
    expect((none.body.blocks as Block[]).some((x) => x.type === 'actions')).toBe(false);

    const a = await bootstrapCsr('m3');
    const b = await bootstrapCsr('m3');
    const msg = await listCsrs();
    const text = textOf(msg);
    expect(text).toMatch(new RegExp(`\\*${a}\\* · kubelet client for m3 · \\d+s old`));
    expect(text).toContain('*Requested by* `system:bootstrap:abcdef` (groups `system:bootstrappers`, `system:bootstrappers:kubeadm:default-node-token`, `system:authenticated`)');
    expect(text).toContain('*Signer* `kubernetes.io/kube-apiserver-client-kubelet` · *usages* digital signature, client auth');
    expect(text).toContain('*Request:* CN `system:node:m3` · O `system:nodes` · SANs none · key EC P-256');
    expect(text).toContain(':white_check_mark: passes policy');
    expect(text).toMatch(/\*2\* pending when drawn: 2 pass policy, none flagged/);

    const ra = rowButtons(msg.ts!, a)!;
    expect(await click('UBOB', msg.ts!, 'medic_csr_approve', ra.blockId, ra.approve)).toBe(`:white_check_mark: approved *${a}*`);
    const rb = rowButtons(msg.ts!, b)!;
    expect(await click('UBOB', msg.ts!, 'medic_csr_deny', rb.blockId, rb.deny)).toBe(`:white_check_mark: denied *${b}*`);

    // kubectl: approved through the approval subresource (then issued by the signer), the other denied.
    const approved = await waitFor('the approved CSR issued', async () => ((await csrJson(a)).status.certificate ? csrJson(a) : null), 10_000, 200);
    expect(condition(approved, 'Approved')).toMatchObject({ status: 'True', reason: 'EtcdMedicApprove', message: 'Approved by Slack user UBOB with etcd-medic' });
    expect((await kube.kubectl(['get', 'csr', a])).stdout).toMatch(/Approved,Issued$/m);
    expect(condition(await csrJson(b), 'Denied')).toMatchObject({ status: 'True', reason: 'EtcdMedicDeny' });
    expect((await kube.kubectl(['get', 'csr', b])).stdout).toMatch(/\sDenied$/m);

    // The message: both rows decided, by whom, and no buttons left on them; a line under it says who did what.
    await messageShows(msg.ts!, /Denied\* by <@UBOB>/);
    const now = textOf(latest(t.slack, msg.ts!));
    expect(now).toMatch(new RegExp(`${a}\\*[^]*:white_check_mark: \\*Approved\\* by <@UBOB> at \\d\\d:\\d\\d:\\d\\dZ`));
    expect(rowButtons(msg.ts!, a)).toBeNull();
    expect(rowButtons(msg.ts!, b)).toBeNull();
    expect(approveAll(msg.ts!)).toBeNull();
    await waitFor('the decision lines under the message', () => threadOf(t.slack, msg.ts!).length >= 2, 10_000, 50);
    expect(threadOf(t.slack, msg.ts!)).toEqual([`<@UBOB> approved CSR ${a}`, `<@UBOB> denied CSR ${b}`]);

    // The timeline: who, which CSR, what it was.
    const tl = await entries();
    expect(tl.find((e) => e.kind === 'approval' && e.text.includes(a))).toMatchObject({
      actor: 'UBOB',
      text: `approved CSR ${a} (kubelet client for m3, requested by system:bootstrap:abcdef, passes policy) in lab`,
    });
    expect(tl.find((e) => e.kind === 'rejection' && e.text.includes(b))).toMatchObject({ actor: 'UBOB', text: expect.stringMatching(/^denied CSR /) });
    expect(tl.some((e) => e.kind === 'command' && e.actor === 'UCAROL' && e.text === '/etcd csr')).toBe(true);
  });

  const ip = (h: string) => t?.lab.host(h).ip;
  it.each([
    { flaw: 'wrong CN', file: () => kube.fileCsr({ as: 'bootstrap', subject: { cn: 'kubernetes-admin', o: ['system:nodes'] } }), reason: () => 'CN "kubernetes-admin" is not system:node:&lt;node name&gt;' },
    {
      flaw: 'extra usage',
      file: () => kube.fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m2', o: ['system:nodes'] }, usages: ['digital signature', 'client auth', 'server auth'] }),
      reason: () => 'extra usage: server auth (allowed: digital signature, client auth, key encipherment)',
    },
    {
      flaw: 'SANs of another node',
      file: () =>
        kube.fileCsr({
          as: { user: 'system:node:m1', groups: ['system:nodes'] },
          signerName: 'kubernetes.io/kubelet-serving',
          usages: ['digital signature', 'server auth'],
          subject: { cn: 'system:node:m1', o: ['system:nodes'], dns: ['m1'], ips: [ip('m2')!] },
        }),
      reason: () => `SAN ${ip('m2')} belongs to node m2, not m1`,
    },
    {
      flaw: 'unknown requestor',
      file: () => kube.fileCsr({ as: { user: 'mallory', groups: ['ops:admins', 'system:masters'] }, subject: { cn: 'system:node:m1', o: ['system:nodes'] } }),
      reason: () => 'requested by mallory (groups ops:admins, system:masters, system:authenticated): neither the node bootstrapper nor the node itself',
    },
  ])('approve-all approves the CSRs that pass and leaves the one with $flaw pending, flagged with why', async ({ file, reason }) => {
    const good = [await bootstrapCsr('m1'), await bootstrapCsr('m2')];
    const bad = (await file()).metadata.name as string;
    const msg = await listCsrs();
    const text = textOf(msg);
    expect(text).toContain(`*1 FLAGGED*`);
    // Flagged first, with every reason, and only its own (danger, confirmed) button approves it.
    expect(text.indexOf(`*${bad}*`)).toBeLessThan(text.indexOf(`*${good[0]}*`));
    expect(text).toContain(`:warning: *FLAGGED*:\n• ${reason()}`);
    expect(rowButtons(msg.ts!, bad)!.approveText).toBe(`Approve FLAGGED ${bad}`);
    const all = approveAll(msg.ts!)!;
    expect(all.text).toBe('Approve all 2 that pass policy');

    const answer = await click('UBOB', msg.ts!, 'medic_csr_approve_all', all.blockId, all.value);
    expect(answer).toContain('Approve all that pass in *lab*: 2 approved, 0 not.');
    for (const g of good) expect(condition(await csrJson(g), 'Approved')).toMatchObject({ reason: 'EtcdMedicApprove' });
    const left = await csrJson(bad);
    expect(left.status.conditions ?? []).toEqual([]);
    expect((await kube.kubectl(['get', 'csr', bad])).stdout).toMatch(/\sPending$/m);

    // Redrawn: the passing rows approved, the flagged one still waiting with its buttons, no approve-all left.
    await messageShows(msg.ts!, new RegExp(`${good[1]}\\*[^]*Approved\\* by <@UBOB>`));
    expect(rowButtons(msg.ts!, bad)).not.toBeNull();
    expect(approveAll(msg.ts!)).toBeNull();
    const tl = await entries();
    for (const g of good) expect(tl.some((e) => e.kind === 'approval' && e.actor === 'UBOB' && e.text.startsWith(`approved CSR ${g} `) && e.text.endsWith('(approve all that pass)'))).toBe(true);
    expect(tl.some((e) => e.kind === 'approval' && e.text.includes(bad))).toBe(false);
    // Out of the way of the next row.
    await kube.kubectl(['certificate', 'deny', bad]);
  });

  it('retries an approval that meets 409 conflicts, and says so', async () => {
    const name = await bootstrapCsr('m2');
    const msg = await listCsrs();
    const r = rowButtons(msg.ts!, name)!;
    // The injected fault: the next two writes to the approval subresource answer 409 Conflict.
    kube.failNextApprovals(2);
    expect(await click('UBOB', msg.ts!, 'medic_csr_approve', r.blockId, r.approve)).toBe(`:white_check_mark: approved *${name}* after 2 conflicts (409), retried`);
    const csr = await csrJson(name);
    expect((csr.status.conditions ?? []).filter((c: any) => c.type === 'Approved')).toHaveLength(1);
    expect((await entries()).find((e) => e.kind === 'approval' && e.text.includes(name))!.text).toMatch(/after 2 conflict\(s\) \(409\)$/);
  });

  it('refuses, each with a clear message and on the timeline, a click without the approve role, a CSR decided meanwhile by kubectl, one deleted, one filed again under its name, and a forged button', async () => {
    const [c1, c2, c3, c4] = [await bootstrapCsr('m1'), await bootstrapCsr('m1'), await bootstrapCsr('m2'), (await kube.fileCsr({ as: 'bootstrap', name: 'node-m3-renewal', subject: { cn: 'system:node:m3', o: ['system:nodes'] } })).metadata.name as string];
    const msg = await listCsrs();
    const ts = msg.ts!;

    const r1 = rowButtons(ts, c1)!;
    expect(await click('UEVE', ts, 'medic_csr_approve', r1.blockId, r1.approve)).toBe(':no_entry: Not approved: you need the *approve* role (workspace.roles.approve in the inventory). Nothing was done.');
    expect(await click('UEVE', ts, 'medic_csr_deny', r1.blockId, r1.deny)).toMatch(/^:no_entry: Not denied: you need the \*approve\* role/);
    expect((await csrJson(c1)).status.conditions ?? []).toEqual([]);

    // Between the message and the click, someone approves c2 with kubectl.
    await kube.kubectl(['certificate', 'approve', c2]);
    const r2 = rowButtons(ts, c2)!;
    expect(await click('UBOB', ts, 'medic_csr_approve', r2.blockId, r2.approve)).toMatch(
      new RegExp(`^:no_entry: Not approved: CSR ${c2} is already (approved|issued) \\(KubectlApprove(, by kubectl)?: This CSR was approved by kubectl certificate approve\\.\\); nothing changed$`),
    );
    expect((await csrJson(c2)).status.conditions.map((c: any) => c.reason)).toEqual(['KubectlApprove']);

    await kube.kubectl(['delete', 'csr', c3]);
    const r3 = rowButtons(ts, c3)!;
    expect(await click('UBOB', ts, 'medic_csr_approve', r3.blockId, r3.approve)).toBe(`:no_entry: Not approved: ${c3} no longer exists: it was deleted since it was shown`);

    // Deleted and filed again under the same name: another request, another uid.
    await kube.kubectl(['delete', 'csr', c4]);
    await kube.fileCsr({ as: 'bootstrap', name: c4, subject: { cn: 'system:node:m3', o: ['system:nodes'] } });
    const r4 = rowButtons(ts, c4)!;
    expect(await click('UBOB', ts, 'medic_csr_approve', r4.blockId, r4.approve)).toBe(`:no_entry: Not approved: ${c4} was deleted and filed again since it was shown`);
    expect((await csrJson(c4)).status.conditions ?? []).toEqual([]);

    // A value this bot never drew (another uid for c1): refused by the worker against the message's record.
    const forged = JSON.stringify({ ...JSON.parse(r1.approve), u: '00000000-0000-0000-0000-000000000000' });
    expect(await click('UBOB', ts, 'medic_csr_approve', r1.blockId, forged)).toBe(`:no_entry: Nothing was approved: that button does not match CSR ${c1} as the message shows it`);
    expect(await click('UBOB', ts, 'medic_csr_approve', r1.blockId, '{"r":"cr-1","n":"x"}')).toBe(":no_entry: That button is not one of this bot's current buttons; nothing was done.");
    expect((await csrJson(c1)).status.conditions ?? []).toEqual([]);

    // The rows say what became of them.
    await messageShows(ts, /filed again since it was shown/);
    const text = textOf(latest(t.slack, ts));
    expect(text).toMatch(new RegExp(`:information_source: CSR ${c2} is already (approved|issued) \\(KubectlApprove(, by kubectl)?: This CSR was approved`));
    expect(text).toContain(`:ghost: ${c3} no longer exists`);
    expect(rowButtons(ts, c1)).not.toBeNull();

    const denied = (await entries()).filter((e) => e.kind === 'denied');
    expect(denied.filter((e) => e.actor === 'UEVE' && e.text.includes(`CSR ${c1} refused: you need the *approve* role`))).toHaveLength(2);
    for (const n of [c2, c3, c4]) expect(denied.some((e) => e.actor === 'UBOB' && e.text.startsWith(`approve of CSR ${n}`))).toBe(true);
    await kube.kubectl(['certificate', 'deny', c1, c4]);
  });

  it('typed: approves the names given that pass policy, never a flagged one; refuses a bad name and a person without the approve role', async () => {
    const good = await bootstrapCsr('m2');
    const bad = (await kube.fileCsr({ as: 'bootstrap', subject: { cn: 'system:node:m2', o: ['system:masters'] } })).metadata.name as string;
    const refused = await t.command(`csr approve ${good}`, { user: 'UCAROL' });
    expect(ackText(refused.body)).toBe('Not allowed: `/etcd csr` you need the *approve* role (workspace.roles.approve in the inventory).');
    const badName = await t.command('csr approve Not_A_Name', { user: 'UBOB' });
    expect(ackText(badName.body)).toMatch(/^"Not_A_Name" is not a CSR name/);

    const since = t.slack.lastSeq;
    await t.command(`csr approve ${good} ${bad}`, { user: 'UBOB' });
    const said = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text) === 'CSR decisions in lab', 20_000, since);
    expect(textOf(said)).toContain(`:white_check_mark: approved *${good}*`);
    expect(textOf(said)).toContain(`:no_entry: Not approved: ${bad} is FLAGGED (O is [system:masters], not exactly [system:nodes])`);
    expect(condition(await csrJson(good), 'Approved')).toBeDefined();
    expect((await csrJson(bad)).status.conditions ?? []).toEqual([]);

    // Named alone, a flagged CSR is still not approved by typing: only its own button, whose confirm says why it is flagged.
    const since2 = t.slack.lastSeq;
    await t.command(`csr lab approve ${bad}`, { user: 'UBOB' });
    const alone = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text) === 'CSR decisions in lab', 20_000, since2);
    expect(textOf(alone)).toContain(`:no_entry: Not approved: ${bad} is FLAGGED (O is [system:masters], not exactly [system:nodes]): a flagged CSR is approved only with its own button`);
    expect((await csrJson(bad)).status.conditions ?? []).toEqual([]);
    expect((await entries()).some((e) => e.kind === 'approval' && e.text.includes(bad))).toBe(false);
    await kube.kubectl(['certificate', 'deny', bad]);
  });

  it('a cluster without a kubeconfig says what to configure, and its etcd commands keep working', async () => {
    const list = await t.command('csr nokube', { user: 'UCAROL' });
    expect(await answerAt(t.slack, list.responseUrl)).toBe(
      ':information_source: `/etcd csr` needs the Kubernetes API of *nokube*: cluster nokube has no Kubernetes access configured: set clusters[].kubeconfig in the inventory to a kubeconfig file (or "in-cluster" when the bot runs in that cluster). The etcd commands (`/etcd status`, `/etcd backup`, …) keep working without Kubernetes access.',
    );
    const typed = await t.command('csr nokube approve csr-abcde', { user: 'UBOB' });
    expect(await answerAt(t.slack, typed.responseUrl)).toMatch(/^:no_entry: Nothing was approved: cluster nokube has no Kubernetes access configured: set clusters\[\]\.kubeconfig/);
    const since = t.slack.lastSeq;
    await t.command('status nokube', { user: 'UCAROL' });
    const { final: status } = await waitForStatusAnswer(t.slack, 'nokube', 20_000, since);
    expect(String(status.body.text)).toMatch(/^etcd nokube: HEALTHY/);
    expect((await entries()).some((e) => e.text.startsWith('approve of CSR csr-abcde in nokube refused: cluster nokube has no Kubernetes access configured'))).toBe(true);
  });

  it('an API server that is down: the reason within the call timeout, and a click decides nothing', async () => {
    const t0 = Date.now();
    const list = await t.command('csr dark', { user: 'UCAROL' });
    const said = await answerAt(t.slack, list.responseUrl);
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect(said).toBe(`:x: Could not list the CSRs of *dark*: connection refused (127.0.88.100:${DARK_PORT}): the API server is not running or not listening there. Nothing was decided. The etcd commands (\`/etcd status\`, \`/etcd backup\`, …) keep working without Kubernetes access.`);

    const name = await bootstrapCsr('m1');
    const msg = await listCsrs();
    const r = rowButtons(msg.ts!, name)!;
    // The fault: every kube-apiserver's manifest is moved away; the load balancer has no target left.
    for (const h of ['m1', 'm2', 'm3']) await kube.stopApiserver(h);
    try {
      const t1 = Date.now();
      const answer = await click('UBOB', msg.ts!, 'medic_csr_approve', r.blockId, r.approve);
      expect(answer).toBe(`:no_entry: Nothing was approved: connection reset by 127.0.88.100:6443`);
      expect(Date.now() - t1).toBeLessThan(8_000);
    } finally {
      for (const h of ['m1', 'm2', 'm3']) await kube.startApiserver(h);
    }
    expect((await csrJson(name)).status.conditions ?? []).toEqual([]);
    expect(rowButtons(msg.ts!, name)).not.toBeNull();
    expect((await entries()).some((e) => e.kind === 'denied' && e.actor === 'UBOB' && e.text.startsWith(`approve of CSR ${name} `) && e.text.endsWith('refused: connection reset by 127.0.88.100:6443'))).toBe(true);
    await kube.kubectl(['certificate', 'deny', name]);
  });

  it('the incident watch posts a wave of new CSRs once to the incident thread, survives dropped watches, and its rows are approved there', async () => {
    // A second worker on the same queue: still one watch per cluster, one post per wave.
    const log = createLogger('info', new Writable({ write: (chunk, _enc, cb) => (t.logs.push(String(chunk)), cb()) }));
    const w2redis = connectRedis(t.config.settings.redisUrl, { forWorker: true });
    const second: MedicWorker = await startWorker({
      inventory: t.config.inventory,
      redis: w2redis,
      prefix: t.config.settings.queuePrefix,
      chat: new SlackPoster(t.config.settings.slack.botToken!, t.config.settings.slack.apiUrl, log),
      log,
      concurrency: 2,
      lockMs: 30_000,
      hmacKey: t.config.settings.hmacKey,
    });
    try {
      const inThread = (name: string) => t.slack.messages((r) => r.method === 'chat.postMessage' && r.body.thread_ts === rootTs && /^New CSRs? in lab/.test(String(r.body.text)) && textOf(r).includes(name));
      const since = t.slack.lastSeq;
      // Two kubelets lose their client certs at once: each files a client CSR with the bootstrap token.
      const [c1, c2] = await Promise.all([kube.rebootstrapKubelet('m1'), kube.rebootstrapKubelet('m2')]);
      const wave = await t.slack.waitFor((r) => r.body.thread_ts === rootTs && /^New CSRs in lab: 2 pending/.test(String(r.body.text)) && textOf(r).includes(c1), 20_000, since);
      expect(textOf(wave)).toContain(`*${c2}* · kubelet client for m2`);
      const footer = (wave.body.blocks as { type: string; elements?: { text: string }[] }[]).find((b) => b.type === 'context')!.elements![0]!.text;
      expect(footer).toMatch(/^cluster lab · drawn \d\d:\d\d:\d\dZ · seen by the incident watch · review cr-[0-9a-f]{8}$/);

      // The fault: the API server cuts every watch. Then a CSR arrives while the watch reconnects.
      expect(kube.dropWatches()).toBeGreaterThanOrEqual(1);
      const c3 = await bootstrapCsr('m3');
      const next = await waitFor('the wave of the CSR filed after the cut', () => inThread(c3)[0], 20_000, 50);
      expect(String(next.body.text)).toMatch(/^New CSR in lab: 1 pending/);
      expect(textOf(next)).not.toContain(c1);
      expect(inThread(c1)).toHaveLength(1);
      expect(inThread(c2)).toHaveLength(1);

      // The fault: the watching worker stalls past its lease and the other one takes the watch over.
      // The new watch lists every CSR again; what the incident's thread already has is not posted again.
      const lease = `${t.config.settings.queuePrefix}:csr:watch:lab:lease`;
      const other = (await redis.get(lease)) === second.id ? t.medic.worker!.id : second.id;
      const logsBefore = t.logs.length;
      await redis.set(lease, other, 'PX', 10_000);
      const started = (l: string) => l.includes('"CSR watch started"') && l.includes(`"worker":"${other}"`) && l.includes('"cluster":"lab"');
      await waitFor('the other worker to watch', () => t.logs.slice(logsBefore).some(started), 10_000, 50);
      const c4 = await bootstrapCsr('m3');
      const after = await waitFor('the wave after the handover', () => inThread(c4)[0], 20_000, 50);
      expect(String(after.body.text)).toMatch(/^New CSR in lab: 1 pending/);
      for (const c of [c1, c2, c3]) expect(inThread(c)).toHaveLength(1);

      // Approved in the thread: the kubelet gets its client cert, then files its serving CSR, which is the next wave.
      const r1 = rowButtons(wave.ts!, c1)!;
      expect(await click('UBOB', wave.ts!, 'medic_csr_approve', r1.blockId, r1.approve)).toBe(`:white_check_mark: approved *${c1}*`);
      await messageShows(wave.ts!, /Approved\* by <@UBOB>/);
      const serving = await waitFor('the serving CSR of m1', () => kube.kubelet('m1').servingCsr, 15_000, 100);
      const servingWave = await waitFor('the serving CSR in the thread', () => inThread(serving)[0], 20_000, 50);
      expect(textOf(servingWave)).toContain(`*${serving}* · kubelet serving for m1`);
      expect(textOf(servingWave)).toContain(`SANs DNS \`m1\`, IP \`${ip('m1')}\``);
      expect(textOf(servingWave)).toContain(':white_check_mark: passes policy');
      const rs = rowButtons(servingWave.ts!, serving)!;
      expect(await click('UBOB', servingWave.ts!, 'medic_csr_approve', rs.blockId, rs.approve)).toBe(`:white_check_mark: approved *${serving}*`);
      await waitFor('the serving cert of m1 issued', async () => !!(await csrJson(serving)).status.certificate, 15_000, 200);

      // One worker held the watch; the timeline says what the watch posted.
      const holder = await redis.get(`${t.config.settings.queuePrefix}:csr:watch:lab:lease`);
      expect([t.medic.worker!.id, second.id]).toContain(holder);
      const tl = await entries();
      expect(tl.some((e) => e.kind === 'state' && e.actor === 'bot' && e.text.startsWith('2 new pending CSR(s) in lab posted for review') && e.text.includes(c1) && e.text.includes(c2))).toBe(true);
      expect(await store.verify(incidentId)).toMatchObject({ ok: true });

      // The incident closes: the watch stops and lets its lease go.
      await t.command('incident close', { user: 'UALICE' });
      await waitFor('the watch lease released', async () => (await redis.get(`${t.config.settings.queuePrefix}:csr:watch:lab:lease`)) === null, 15_000, 100);
    } finally {
      await kube.kubectl(['certificate', 'approve', kube.kubelet('m2').clientCsr!], { allowFail: true });
      await second.close();
      w2redis.disconnect();
    }
  });
});
