import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import { makeCert } from '../../src/lab/certs.js';
import { portOpen } from '../../src/lab/harness.js';
import { run, waitFor } from '../../src/lab/proc.js';
import { labAction, labState } from '../../src/playground/lab-api.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';

const SUBNET = 90;
const DAY = 86_400_000;
const isoDay = (d: Date) => d.toISOString().slice(0, 10);

/** All the text of a posted message, blocks included, as a person reads it. */
function messageText(r: SlackRecord): string {
  const blocks = (r.body.blocks as { text?: { text?: string }; elements?: { text?: string }[] }[]) ?? [];
  return blocks.map((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text ?? '')].join('\n')).join('\n');
}

/** What openssl reads from a certificate: the reference for the dates the bot shows. */
async function opensslEnd(pem: string): Promise<Date> {
  const { stdout } = await run('openssl', ['x509', '-noout', '-enddate'], { input: pem });
  return new Date(/notAfter=(.*)/.exec(stdout)![1]!);
}

describe('/etcd certs and the certificate line of /etcd status, against the lab with its Kubernetes stand-in', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('certs', SUBNET, {
      lab: { kube: true },
      // A second cluster over the same members, without Kubernetes access: what an etcd-only inventory looks like.
      editInventory: (inv) => {
        const { kubeconfig: _, ...etcdOnly } = inv.clusters[0];
        inv.clusters.push({ ...etcdOnly, name: 'etcd-only' });
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** Types `/etcd <text>` and waits for the channel message whose fallback text starts with `prefix`. */
  async function ask(text: string, prefix: string): Promise<{ post: SlackRecord; text: string; ms: number }> {
    const since = t.slack.lastSeq;
    const t0 = Date.now();
    const res = await t.command(text);
    expect(res.status).toBe(200);
    const post = await t.slack.waitFor((r) => r.kind === 'api' && r.method === 'chat.postMessage' && String(r.body.text).startsWith(prefix), 30_000, since);
    return { post, text: messageText(post), ms: Date.now() - t0 };
  }

  it('/etcd status shows no certificate line while every certificate has more than 7 days, and one naming /etcd certs once a kubelet certificate expired', async () => {
    const before = await ask('status', 'etcd lab:');
    expect(String(before.post.body.text)).toContain('HEALTHY');
    expect(before.text).not.toContain('/etcd certs');

    // The fault: m1's kubelet serves a certificate that ended two days ago.
    const pem = await t.lab.kube!.setServingCert('m1', 'kubelet', { notBefore: new Date(Date.now() - 60 * DAY), notAfter: new Date(Date.now() - 2 * DAY - 3_600_000) });
    const end = await opensslEnd(pem);
    const after = await ask('status', 'etcd lab:');
    expect(String(after.post.body.text)).toContain('HEALTHY');
    const warnings = after.text.slice(after.text.indexOf('*Warnings*'));
    expect(warnings).toContain(`• :warning: A certificate expired or ending within 7 days: kubelet on m1 expired 2 days ago (${isoDay(end)}). \`/etcd certs\` lists every certificate and what to do.`);
    expect(after.text.match(/\/etcd certs/g)).toHaveLength(1);
  });

  it('/etcd certs names the expired and the soon-to-expire certificates first, and a stopped member\'s with its reason while listing the rest', async () => {
    const lab = t.lab;
    // The fault: m2's etcd peer certificate ends in three days (made from the etcd CA, served after a restart of m2).
    const m2 = lab.host('m2');
    const soon = { notBefore: new Date(Date.now() - 20 * DAY), notAfter: new Date(Date.now() + 3 * DAY + 3_600_000) };
    const c = await makeCert(join(lab.opts.root, 'short-lived'), 'm2-peer', { cert: lab.tls.ca, key: join(lab.opts.root, 'ca', 'ca.key') }, [m2.ip, '127.0.0.1'], soon);
    await lab.stopMember('m2');
    copyFileSync(c.cert, join(m2.pkiDir, 'peer.crt'));
    copyFileSync(c.key, join(m2.pkiDir, 'peer.key'));
    await lab.startMember('m2');
    await lab.waitHealthy();
    const peerEnd = await opensslEnd(readFileSync(join(m2.pkiDir, 'peer.crt'), 'utf8'));
    // And m3 is stopped: its client and peer ports refuse.
    await lab.stopMember('m3');
    try {
      const { post, text } = await ask('certs', 'Certificates of lab');
      // 3 client + 3 peer + the bot's own + 3 kube-apiserver + 3 kubelet = 13. The lab's etcd certificates live 30 days.
      expect(String(post.body.text)).toBe('Certificates of lab: 1 expired, 5 within 30 days, 2 could not be read, 5 valid for more than 30 days');
      const lines = text.split('\n');
      expect(lines[1]).toBe(':red_circle: *1 expired, 5 within 30 days*, 2 could not be read, 5 valid for more than 30 days');
      const rows = lines.filter((l) => /^:(red_circle|large_orange_circle|black_circle|white_check_mark): \*[^*]+\* · `/.test(l));
      expect(rows).toHaveLength(13);
      const ip = (n: string) => lab.host(n).ip;
      expect(rows[0]).toMatch(new RegExp(`^:red_circle: \\*kubelet on m1\\* · \`${ip('m1')}:10250\` · \`O=system:nodes, CN=system:node:m1\` · expired \\d{4}-\\d\\d-\\d\\d · \\*2 days ago\\*$`));
      expect(rows[1]).toBe(`:large_orange_circle: *etcd peer of m2* · \`${ip('m2')}:2380\` · \`CN=m2-peer\` · expires ${isoDay(peerEnd)} · *3 days left*`);
      // Then the lab's 30-day certificates (warn), then the two m3 could not be read, with why, then the valid ones.
      expect(rows.slice(2, 6).every((r) => r.startsWith(':large_orange_circle:') && /\*(29|30) days left\*$/.test(r))).toBe(true);
      expect(rows.slice(2, 6).map((r) => /^:large_orange_circle: \*([^*]+)\*/.exec(r)![1])).toEqual(['etcd client of m1', 'etcd client of m2', 'etcd peer of m1', "the bot's etcd client certificate"]);
      expect(rows[6]).toBe(`:black_circle: *etcd client of m3* · \`${ip('m3')}:2379\` · could not be read: connection refused (${ip('m3')}:2379)`);
      expect(rows[7]).toBe(`:black_circle: *etcd peer of m3* · \`${ip('m3')}:2380\` · could not be read: connection refused (${ip('m3')}:2380)`);
      expect(rows.slice(8).map((r) => /^:white_check_mark: \*([^*]+)\*/.exec(r)?.[1])).toEqual(['kube-apiserver on m1', 'kube-apiserver on m2', 'kubelet on m2', 'kube-apiserver on m3', 'kubelet on m3']);
      expect(rows[8]).toMatch(/· `CN=kube-apiserver` · expires \d{4}-\d\d-\d\d · 36[45] days left$/);
      // What to do, and that the bot does not do it.
      expect(text).toContain('the bot reads certificates; it does not renew them');
      expect(text).toContain('• etcd: on each master, `kubeadm certs renew` the ones named (m2: etcd-peer, etcd-server; m1: etcd-server, etcd-peer), then restart its etcd static pod');
      expect(text).toContain('• kubelet (m1): with `serverTLSBootstrap: true`');
      expect(text).not.toContain('*Not checked*');
    } finally {
      await lab.startMember('m3');
      await lab.waitHealthy();
    }
  });

  it('a cluster without a kubeconfig lists the etcd certificates only, and says the Kubernetes ones were not checked and why', async () => {
    const { post, text } = await ask('certs etcd-only', 'Certificates of etcd-only');
    expect(String(post.body.text)).toMatch(/^Certificates of etcd-only: /);
    const rows = text.split('\n').filter((l) => /^:(red_circle|large_orange_circle|black_circle|white_check_mark): \*[^*]+\* · `/.test(l));
    expect(rows.map((r) => /\*([^*]+)\*/.exec(r)![1]).sort()).toEqual(
      ['etcd client of m1', 'etcd client of m2', 'etcd client of m3', 'etcd peer of m1', 'etcd peer of m2', 'etcd peer of m3', "the bot's etcd client certificate"].sort(),
    );
    expect(text).not.toMatch(/kubelet on|kube-apiserver on/);
    expect(text).toContain(
      '*Not checked*\n• kube-apiserver and kubelet certificates not checked: the cluster has no kubeconfig in the inventory. Set `clusters[].kubeconfig` in the inventory (a kubeconfig file, or "in-cluster" when the bot runs in that cluster) to check them.',
    );
  });

  it('the playground\'s buttons: kube-apiserver stopped and started, and a kubelet that re-bootstraps files a pending CSR', async () => {
    const lab = t.lab;
    const kube = lab.kube!;
    expect(labState(lab).map((h) => [h.name, h.running, h.kube])).toEqual(['m1', 'm2', 'm3'].map((n) => [n, true, { apiserver: true, kubelet: 'running', pendingCsrs: 0 }]));

    expect(await labAction(lab, 'apiserver-stop', 'm3')).toEqual({ status: 200, body: { ok: true } });
    expect(await portOpen(lab.host('m3').ip, 6443)).toBe(false);
    expect(labState(lab).find((h) => h.name === 'm3')!.kube!.apiserver).toBe(false);
    expect(await labAction(lab, 'apiserver-start', 'm3')).toEqual({ status: 200, body: { ok: true } });
    expect(await portOpen(lab.host('m3').ip, 6443)).toBe(true);

    const r = await labAction(lab, 'rebootstrap', 'm2');
    expect(r.status).toBe(200);
    const csr = String(r.body.csr);
    // kubectl sees it pending, requested with the bootstrap token, as kubeadm's kubelets do.
    const got = JSON.parse((await kube.kubectl(['get', 'csr', csr, '-o', 'json'])).stdout);
    expect(got.status.conditions ?? []).toEqual([]);
    expect(got.spec.signerName).toBe('kubernetes.io/kube-apiserver-client-kubelet');
    expect(labState(lab).find((h) => h.name === 'm2')!.kube).toEqual({ apiserver: true, kubelet: 'bootstrapping', pendingCsrs: 1 });

    expect(await labAction(lab, 'reboot', 'm2')).toEqual({ status: 404, body: { error: 'no lab operation reboot' } });
    expect(await labAction(lab, 'stop', 'm9')).toEqual({ status: 404, body: { error: 'no member m9' } });

    // Put it back: approved with kubectl, the kubelet runs again once its certificates are issued.
    await kube.kubectl(['certificate', 'approve', csr]);
    await waitFor('m2 kubelet running', async () => labState(lab).find((h) => h.name === 'm2')!.kube!.kubelet === 'running', 20_000);
  });
});
