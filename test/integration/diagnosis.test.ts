import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import { portOpen } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import { ackText } from '../../src/lab/signed-requests.js';
import { decodeCommand } from '../../src/render/command-button.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, textOf } from '../support/slack-view.js';
import { waitForStatusAnswer } from '../../src/lab/slack-view.js';

// Alice may start destructive runbooks, Bob approves, Vic only reads.
const ROLES = { read: ['*'], operate: ['UALICE'], destroy: ['UALICE'], approve: ['UBOB'] };

interface Offered {
  blockId: string;
  text: string;
  label: string;
  value: string;
  command: string;
}

/** The diagnosis sections of a status message: their text and the command each button runs. */
function diagnosisOf(post: SlackRecord): Offered[] {
  const blocks = (post.body.blocks as { block_id?: string; text?: { text: string }; accessory?: { action_id: string; value: string; text: { text: string } } }[]) ?? [];
  return blocks
    .filter((b) => b.block_id?.startsWith('diagnosis-'))
    .map((b) => {
      const cmd = b.accessory ? decodeCommand(b.accessory.value) : null;
      expect(b.accessory?.action_id ?? 'medic_command').toBe('medic_command');
      return { blockId: b.block_id!, text: b.text!.text, label: b.accessory?.text.text ?? '', value: b.accessory?.value ?? '', command: cmd ? [cmd.command, ...cmd.args].join(' ') : '' };
    });
}


describe('/etcd status diagnoses what it sees and offers the runbook as a button', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('diagnosis', 144, { roles: ROLES, lab: { kube: true } });
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
  });

  async function status(): Promise<SlackRecord> {
    const since = t.slack.lastSeq;
    const res = await t.command('status', { user: 'UVIC' });
    expect(res.status).toBe(200);
    // The message as it ends up (a progress message first when members are slow, redrawn with the verdict and its buttons).
    return (await waitForStatusAnswer(t.slack, 'lab', 20_000, since)).final;
  }

  /** Clicks a diagnosis button as `user`; the ephemeral answer. */
  async function click(post: SlackRecord, o: Offered, user: string): Promise<string> {
    const res = await t.click({ user, messageTs: post.ts!, actionId: 'medic_command', blockId: o.blockId, value: o.value });
    return answerAt(t.slack, res.responseUrl);
  }

  /** The plan message a click started, its run ID, and who it says asked; the run is cancelled after. */
  async function planFrom(since: number, title: RegExp): Promise<{ text: string; runId: string }> {
    const plan = await t.slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.postMessage' && title.test(String(r.body.text)), 60_000, since);
    const text = textOf(plan);
    const runId = /Run `(r-[0-9a-f]{8})`/.exec(text)![1]!;
    return { text, runId };
  }

  async function cancel(runId: string): Promise<void> {
    const ack = ackText((await t.command(`cancel ${runId}`, { user: 'UALICE' })).body);
    expect(ack).toContain(`Cancelling run \`${runId}\``);
    await t.slack.waitFor((r) => r.kind === 'api' && (r.method === 'chat.update' || r.method === 'chat.postMessage') && textOf(r).includes(runId) && /CANCELLED/.test(textOf(r)), 30_000);
  }

  it('a healthy cluster: no diagnosis, no button', async () => {
    const post = await status();
    expect(String(post.body.text)).toContain('HEALTHY');
    expect(diagnosisOf(post)).toEqual([]);
  });

  it('one member stopped: Replace m3; a viewer clicking it is refused as if they had typed it; Alice clicking it starts the replace plan as her', async () => {
    await t.lab.stopMember('m3');
    try {
      const post = await status();
      const d = diagnosisOf(post);
      expect(d.map((x) => x.command)).toEqual(['replace m3 lab']);
      expect(d[0]!.label).toBe('Replace m3');
      expect(d[0]!.text).toMatch(/\*1\. Replace m3\*\nm3 \([0-9a-f]+\) does not answer \(refused: [^\n]+\) while quorum holds\./);

      // Vic only reads: the click is refused with the very words typing the command gets.
      const refused = await click(post, d[0]!, 'UVIC');
      const typed = ackText((await t.command('replace m3 lab', { user: 'UVIC' })).body);
      expect(refused).toBe(typed);
      expect(refused).toContain('Not allowed: `/etcd replace` you need the *destroy* role');

      const since = t.slack.lastSeq;
      const ack = await click(post, d[0]!, 'UALICE');
      expect(ack).toContain('Planning the replacement of *m3* in *lab*');
      const plan = await planFrom(since, /^Replace m3 in lab/);
      // The clicker is the requester: she cannot approve her own destructive steps; the plan waits for someone else.
      expect(plan.text).toContain(`Run \`${plan.runId}\` asked by <@UALICE>`);
      await cancel(plan.runId);
    } finally {
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  }, 120_000);

  it('majority stopped: Restore quorum naming the survivor and why; the click plans it as the clicker', async () => {
    await t.lab.killMember('m2');
    await t.lab.killMember('m3');
    try {
      const post = await status();
      expect(String(post.body.text)).toContain('QUORUM LOST');
      const d = diagnosisOf(post);
      expect(d.map((x) => x.command)).toEqual(['restore-quorum lab']);
      expect(d[0]!.label).toBe('Restore quorum from m1');
      expect(d[0]!.text).toMatch(/Majority lost: 1 of 3 voters up with a leader, 2 needed \(m2: refused, m3: refused\)\. Survivor m1: it answers with the highest raft index \(\d+, the only one answering\)\./);

      const since = t.slack.lastSeq;
      await click(post, d[0]!, 'UALICE');
      const plan = await planFrom(since, /^Restore quorum of lab/);
      expect(plan.text).toContain(`Run \`${plan.runId}\` asked by <@UALICE>`);
      // The planner picked the survivor the diagnosis named.
      expect(plan.text).toMatch(/m1/);
      await cancel(plan.runId);
    } finally {
      await t.lab.startMember('m2');
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  }, 120_000);

  it('a stale member of another cluster on m3\'s address: fence it (replace m3), not a plain replace', async () => {
    await t.lab.stopMember('m3');
    const h = t.lab.host('m3');
    // Fault: an old m3 comes back from a data dir of another cluster, on the same addresses and certificates.
    const staleDir = join(h.root, 'stale-etcd');
    mkdirSync(staleDir, { recursive: true });
    const stale: ChildProcess = spawn('/usr/bin/etcd', [
      '--name=m3',
      `--data-dir=${staleDir}/data`,
      `--advertise-client-urls=${h.clientUrl}`,
      `--listen-client-urls=${h.clientUrl}`,
      `--initial-advertise-peer-urls=${h.peerUrl}`,
      `--listen-peer-urls=${h.peerUrl}`,
      `--initial-cluster=m3=${h.peerUrl}`,
      '--initial-cluster-state=new',
      '--initial-cluster-token=an-older-cluster',
      `--cert-file=${h.pkiDir}/server.crt`,
      `--key-file=${h.pkiDir}/server.key`,
      `--trusted-ca-file=${h.pkiDir}/ca.crt`,
      '--client-cert-auth=true',
      `--peer-cert-file=${h.pkiDir}/peer.crt`,
      `--peer-key-file=${h.pkiDir}/peer.key`,
      `--peer-trusted-ca-file=${h.pkiDir}/ca.crt`,
      '--peer-client-cert-auth=true',
    ], { stdio: 'ignore' });
    try {
      await waitFor('the stale m3 to answer', async () => (await t.lab.etcdctl(['endpoint', 'status'], [h.clientUrl], true)).code === 0, 20_000, 200);
      const post = await status();
      const d = diagnosisOf(post);
      expect(d.map((x) => x.command)).toEqual(['replace m3 lab']);
      expect(d[0]!.label).toBe('Fence and rejoin m3');
      expect(d[0]!.text).toMatch(new RegExp(`${h.clientUrl.replace(/[.]/g, '\\.')} answers as member [0-9a-f]+ of cluster [0-9a-f]+, not of [0-9a-f]+: a stale member that came back\\.`));
    } finally {
      stale.kill('SIGKILL');
      await waitFor('the stale m3 to be gone', async () => stale.exitCode !== null || stale.signalCode !== null, 10_000);
      await waitFor('m3\'s port free', async () => !(await portOpen(h.ip, 2379)), 10_000);
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
  }, 120_000);

  it('a NOSPACE alarm: Compact and defragment, its button the text `/etcd defrag lab`', async () => {
    const m1 = (await t.lab.memberList()).find((m) => m.name === 'm1')!;
    const client = new Etcd3({
      hosts: [t.lab.host('m1').clientUrl],
      credentials: { rootCertificate: readFileSync(t.lab.tls.ca), privateKey: readFileSync(t.lab.tls.key), certChain: readFileSync(t.lab.tls.cert) },
    });
    try {
      // Fault: the space quota is exhausted on m1 (etcd raises NOSPACE and refuses writes).
      await client.maintenance.alarm({ action: 'Activate', memberID: BigInt(`0x${m1.id}`).toString(), alarm: 'Nospace' });
      const put = await t.lab.etcdctl(['put', 'diag-probe', 'x'], t.lab.endpoints, true);
      expect(put.stderr + put.stdout).toContain('database space exceeded');
      const post = await status();
      const d = diagnosisOf(post);
      expect(d.map((x) => x.command)).toEqual(['defrag lab']);
      expect(d[0]!.text).toContain('alarm NOSPACE on m1 (writes refused)');
      // The verdict names the alarm as etcdctl does, and says what it means.
      expect(textOf(post)).toContain(':rotating_light: alarms: NOSPACE');
      expect(textOf(post)).toContain('NOSPACE: the cluster only accepts reads and deletes');
    } finally {
      await t.lab.etcdctl(['alarm', 'disarm']);
      client.close();
    }
  }, 60_000);

  it('NOSPACE: the Defrag button, clicked by a viewer, is refused as typing is; clicked twice by Alice, it plans `/etcd defrag lab` once, as her', async () => {
    const m1 = (await t.lab.memberList()).find((m) => m.name === 'm1')!;
    const client = new Etcd3({
      hosts: [t.lab.host('m1').clientUrl],
      credentials: { rootCertificate: readFileSync(t.lab.tls.ca), privateKey: readFileSync(t.lab.tls.key), certChain: readFileSync(t.lab.tls.cert) },
    });
    let runId: string | undefined;
    try {
      // Fault: the space quota is exhausted on m1 (etcd raises NOSPACE and refuses writes).
      await client.maintenance.alarm({ action: 'Activate', memberID: BigInt(`0x${m1.id}`).toString(), alarm: 'Nospace' });
      const post = await status();
      const d = diagnosisOf(post);
      expect(d.map((x) => [x.label, x.command])).toEqual([['Compact and defragment', 'defrag lab']]);

      const refused = await click(post, d[0]!, 'UVIC');
      expect(refused).toBe(ackText((await t.command('defrag lab', { user: 'UVIC' })).body));
      expect(refused).toContain('Not allowed: `/etcd defrag` you need the *destroy* role');

      // A double click: two plan jobs reach the workers, one plan comes out; the other is told the cluster is taken.
      const since = t.slack.lastSeq;
      const acks = await Promise.all([click(post, d[0]!, 'UALICE'), click(post, d[0]!, 'UALICE')]);
      for (const a of acks) expect(a).toContain('Looking at every member of *lab*');
      const plan = await planFrom(since, /^Compact and defragment lab/);
      runId = plan.runId;
      expect(plan.text).toContain(`Run \`${plan.runId}\` asked by <@UALICE>`);
      const other = await t.slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.postMessage' && /^\/etcd defrag lab refused/.test(String(r.body.text)), 60_000, since);
      expect(textOf(other)).toContain(`run \`${plan.runId}\` is`);
      const plans = t.slack.messages((r: SlackRecord) => r.seq > since && r.kind === 'api' && r.method === 'chat.postMessage' && /^Compact and defragment lab/.test(String(r.body.text)));
      expect(plans).toHaveLength(1);
      // Nothing was compacted or disarmed: the plan waits for a second person's approval.
      expect((await t.lab.etcdctl(['alarm', 'list'])).stdout).toContain('alarm:NOSPACE');
    } finally {
      if (runId) await cancel(runId);
      await t.lab.etcdctl(['alarm', 'disarm']);
      client.close();
    }
  }, 120_000);

  it('a stale Replace m3 button clicked after m3 came back plans nothing: the planner looks again and says m3 is healthy', async () => {
    await t.lab.stopMember('m3');
    let post: SlackRecord;
    try {
      post = await status();
    } finally {
      await t.lab.startMember('m3');
      await t.lab.waitHealthy();
    }
    const d = diagnosisOf(post);
    expect(d.map((x) => x.command)).toEqual(['replace m3 lab']);
    // An hour later, as far as the cluster is concerned: m3 is back and healthy. Alice clicks the old button.
    const since = t.slack.lastSeq;
    expect(await click(post, d[0]!, 'UALICE')).toContain('Planning the replacement of *m3* in *lab*');
    const answer = await t.slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.postMessage' && /^\/etcd replace m3 refused/.test(String(r.body.text)), 60_000, since);
    expect(textOf(answer)).toMatch(/m3 \([0-9a-f]+\) is healthy: it answers, raft index \d+\. Replacing a healthy member is rarely right/);
    expect(t.slack.messages((r: SlackRecord) => r.seq > since && r.kind === 'api' && r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)))).toEqual([]);
    expect((await t.lab.memberList()).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
  }, 120_000);

  it('a kubelet certificate ending in 3 days: renew that kubelet, its button `/etcd kubelets renew lab m1`', async () => {
    const DAY = 86_400_000;
    // Fault: m1's kubelet serves a certificate that ends in three days.
    await t.lab.kube!.setServingCert('m1', 'kubelet', { notBefore: new Date(Date.now() - 300 * DAY), notAfter: new Date(Date.now() + 3 * DAY + 3_600_000) });
    try {
      const post = await status();
      const d = diagnosisOf(post);
      expect(d.map((x) => x.command)).toEqual(['kubelets renew lab m1']);
      expect(d[0]!.label).toBe('Renew the kubelets of m1');
      expect(d[0]!.text).toMatch(/kubelet on m1 expires in 3 days \(\d{4}-\d\d-\d\d\)\./);
    } finally {
      await t.lab.kube!.setServingCert('m1', 'kubelet', { notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY) });
    }
  }, 60_000);

  it('a pending CSR of a master: Review 1 pending CSR, its click runs `/etcd csr lab` as the clicker', async () => {
    const kube = t.lab.kube!;
    // Fault: m2's kubelet lost its client certificate and asks for a new one.
    const name = await kube.rebootstrapKubelet('m2');
    try {
      const post = await status();
      const d = diagnosisOf(post);
      expect(d.map((x) => x.command)).toEqual(['csr lab']);
      expect(d[0]!.text).toContain(`1 CSR of control-plane node m2 waits for approval (${name})`);
      const clicked = await click(post, d[0]!, 'UVIC');
      const typed = ackText((await t.command('csr lab', { user: 'UVIC' })).body);
      const noJob = (s: string) => s.replace(/\(job `[^`]+`\)/, '(job)');
      expect(noJob(clicked)).toBe(noJob(typed));
    } finally {
      await kube.request('DELETE', `/apis/certificates.k8s.io/v1/certificatesigningrequests/${name}`);
    }
  }, 60_000);
});
