import { describe, expect, it } from 'vitest';
import { COMMANDS, findCommand } from '../../commands/index.js';
import { listedMembers, worstFirst, type CertCheck } from '../../src/certs/check.js';
import { classifyExpiry } from '../../src/certs/expiry.js';
import { statusCertLine } from '../../src/certs/status-check.js';
import type { CertTarget, TargetReading } from '../../src/certs/targets.js';
import { parseInventory } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';
import { blockLimitViolations } from '../../src/render/block-limits.js';
import { renderCerts } from '../../src/render/certs-message.js';
import { clip } from '../../src/render/status-message.js';
import type { StatusReport } from '../../src/status/assess.js';

const now = new Date('2026-11-24T12:00:00Z');
const DAY = 86_400_000;

const target = (kind: Exclude<CertTarget['kind'], 'bot-client'>, member: string, i: number): CertTarget => {
  const port = { 'etcd-client': 2379, 'etcd-peer': 2380, 'kube-apiserver': 6443, kubelet: 10250 }[kind];
  return { kind, label: `${kind} ${member}`, member, host: `10.0.0.${i}`, port };
};
/** A reading of a certificate that ends `days` from now (negative: ended that long ago). */
const reading = (t: CertTarget, days: number, subject = 'CN=x'): TargetReading => {
  const cert = { subject, issuer: 'CN=ca', notBefore: new Date(now.getTime() - 300 * DAY), notAfter: new Date(now.getTime() + days * DAY), fingerprint256: 'AB' };
  return { target: t, ok: true, cert, expiry: classifyExpiry(cert, now) };
};
const unreadable = (t: CertTarget, error: string): TargetReading => ({ target: t, ok: false, error });
const check = (readings: TargetReading[], notes: string[] = []): CertCheck => ({ cluster: 'prod', at: now, tookMs: 12, readings: worstFirst(readings), notes });
const text = (m: { blocks: Record<string, any>[] }) => m.blocks.map((b) => b.text?.text ?? (b.elements ?? []).map((e: any) => e.text).join(' ')).join('\n');

describe('/etcd certs: the command', () => {
  const inv = parseInventory(
    `clusters:
  - name: prod
    etcd: { endpoints: [https://10.0.0.1:2379] }
    members:
      - { name: m1, host: 10.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: SHA256:${'A'.repeat(43)} } }`,
    'i.yaml',
  );
  const ctx = { inventory: inv, userId: 'U1', channelId: 'C1', commands: COMMANDS };

  it('takes an optional cluster, needs the read role and asks a worker for a certs job', () => {
    const c = findCommand('certs')!;
    expect(c.role).toBe('read');
    expect(c.run([], ctx)).toEqual({ kind: 'job', job: { name: 'certs', data: { cluster: 'prod' } }, ack: 'Reading the certificates of *prod*…' });
    expect(() => c.run(['prod', 'extra'], ctx)).toThrow(UsageError);
    expect(() => c.run(['prod', 'extra'], ctx)).toThrow('unexpected argument "extra"');
  });
});

describe('/etcd certs: the message', () => {
  const kubelet1 = target('kubelet', 'm1', 1);
  const peer2 = target('etcd-peer', 'm2', 2);
  const client3 = target('etcd-client', 'm3', 3);
  const api1 = target('kube-apiserver', 'm1', 1);
  const client1 = target('etcd-client', 'm1', 1);

  it('puts the worst first: expired, then the fewest days left, then unreadable, then the valid ones', () => {
    const sorted = worstFirst([reading(api1, 300), unreadable(client3, 'connection refused (10.0.0.3:2379)'), reading(client1, 20), reading(peer2, 3), reading(kubelet1, -2)]);
    expect(sorted.map((r) => r.target.label)).toEqual(['kubelet m1', 'etcd-peer m2', 'etcd-client m1', 'etcd-client m3', 'kube-apiserver m1']);
  });

  it('says in one line at the top how many are expired and how many end within 30 days, then a row per certificate', () => {
    const m = renderCerts(check([reading(api1, 300, 'CN=kube-apiserver'), unreadable(client3, 'connection refused (10.0.0.3:2379)'), reading(peer2, 3.5, 'CN=m2-peer'), reading(kubelet1, -2.5, 'O=system:nodes, CN=system:node:m1')]), { footer: 'asked by <@U1>' });
    expect(m.text).toBe('Certificates of prod: 1 expired, 1 within 30 days, 1 could not be read, 1 valid for more than 30 days');
    expect((m.blocks[1] as any).text.text).toBe(':red_circle: *1 expired, 1 within 30 days*, 1 could not be read, 1 valid for more than 30 days');
    const rows = String((m.blocks[3] as any).text.text).split('\n');
    expect(rows).toEqual([
      ':red_circle: *kubelet on m1* · `10.0.0.1:10250` · `O=system:nodes, CN=system:node:m1` · expired 2026-11-22 · *2 days ago*',
      ':large_orange_circle: *etcd peer of m2* · `10.0.0.2:2380` · `CN=m2-peer` · expires 2026-11-28 · *3 days left*',
      ':black_circle: *etcd client of m3* · `10.0.0.3:2379` · could not be read: connection refused (10.0.0.3:2379)',
      ':white_check_mark: *kube-apiserver on m1* · `10.0.0.1:6443` · `CN=kube-apiserver` · expires 2027-09-20 · 300 days left',
    ]);
    // What to do, for the kinds that are due, and plainly that the bot does not renew.
    const all = text(m);
    expect(all).toContain('the bot reads certificates; it does not renew them');
    expect(all).toContain('• kubelet (m1):');
    expect(all).toContain('• etcd: on each master, `kubeadm certs renew` the ones named (m2: etcd-peer), then restart its etcd static pod');
    expect(all).not.toContain('`kubeadm certs renew etcd-server`');
    expect(all).not.toContain('kubeadm certs renew apiserver');
    expect(blockLimitViolations(m.blocks)).toEqual([]);
  });

  it('says "all N valid for more than 30 days" when nothing is due, and names what was not checked and how to check it', () => {
    const m = renderCerts(check([reading(client1, 90), reading(peer2, 200)], ['kube-apiserver and kubelet certificates not checked: the cluster has no kubeconfig in the inventory']), {
      footer: 'f',
      kubeconfigHint: 'Set `clusters[].kubeconfig` in the inventory.',
    });
    expect((m.blocks[1] as any).text.text).toBe(':large_green_circle: *all 2 certificates valid for more than 30 days*');
    expect(text(m)).toContain('*Not checked*\n• kube-apiserver and kubelet certificates not checked: the cluster has no kubeconfig in the inventory. Set `clusters[].kubeconfig` in the inventory.');
    expect(text(m)).not.toContain('What to do');
  });

  it('a certificate whose subject tries to format or ping is shown inert', () => {
    const m = renderCerts(check([reading(client1, 10, 'CN=<!channel> `x` *bold*')]), { footer: 'f' });
    expect(text(m)).toContain("`CN=&lt;!channel&gt; 'x' *bold*`");
    expect(text(m)).not.toContain('<!channel>');
  });

  it('stays within Block Kit limits for a large cluster with long errors', () => {
    const many: TargetReading[] = [];
    for (let i = 1; i <= 150; i++) {
      for (const kind of ['etcd-client', 'etcd-peer', 'kube-apiserver', 'kubelet'] as const) {
        const t = target(kind, `master-${i}-with-a-long-name.example.internal`, i);
        many.push(i % 3 ? reading(t, i - 10, `CN=${'x'.repeat(200)}`) : unreadable(t, `no TLS handshake with ${t.kind} ${'y'.repeat(300)} within 5 s`));
      }
    }
    const m = renderCerts(check(many), { footer: 'f' });
    expect(blockLimitViolations(m.blocks)).toEqual([]);
    expect(text(m)).toMatch(/… and \d+ more rows not shown \(the worst come first\)\./);
  });
});

describe('/etcd status: the certificate line', () => {
  const kubelet1 = target('kubelet', 'm1', 1);
  const peer2 = target('etcd-peer', 'm2', 2);

  it('names what expired or ends within 7 days, worst first, and points at /etcd certs', () => {
    expect(statusCertLine([reading(peer2, 5.5), reading(kubelet1, -2.5)])).toBe(
      ':warning: 2 certificates expired or ending within 7 days: kubelet on m1 expired 2 days ago (2026-11-22); etcd peer of m2 expires in 5 days (2026-11-30). `/etcd certs` lists every certificate and what to do.',
    );
  });

  it('says nothing for certificates with 7 days or more left, nor for one that could not be read', () => {
    expect(statusCertLine([reading(peer2, 7.5), reading(kubelet1, 29), unreadable(kubelet1, 'no TLS handshake within 2 s')])).toBeNull();
  });

  it('names at most three and counts the rest', () => {
    const line = statusCertLine([1, 2, 3, 4, 5].map((i) => reading(target('kubelet', `m${i}`, i), -i)))!;
    expect(line).toMatch(/^:warning: 5 certificates expired .*: kubelet on m5 .*; kubelet on m4 .*; kubelet on m3 [^;]* and 2 more\. `\/etcd certs`/);
  });
});

describe('the member list the peer certificates come from', () => {
  const row = (name: string, started: boolean, idHex: string | null, peer: string[]) => ({ name, started, idHex, peerURLs: peer, clientURLs: [], learner: false, reachable: true, error: null, isLeader: false, status: null, alarms: [] });
  const report = (members: ReturnType<typeof row>[]) => ({ members }) as unknown as StatusReport;

  it('lists started members with their peer URLs; none when no member answered', () => {
    expect(listedMembers(report([row('m1', true, 'a1', ['https://10.0.0.1:2380']), row('(not started)', false, 'b2', ['https://10.0.0.9:2380'])]))).toEqual([{ name: 'm1', peerURLs: ['https://10.0.0.1:2380'] }]);
    expect(listedMembers(report([row('m1', true, null, [])]))).toBeNull();
  });
});

describe('clipping text to a Slack limit', () => {
  it('never returns more than the limit, whatever the size of what was cut, and says how much was cut', () => {
    for (const max of [75, 150, 300, 2000, 3000]) {
      for (const len of [max, max + 1, max + 50, 10 * max, 100_000]) {
        const out = clip('a'.repeat(len), max);
        expect(out.length).toBeLessThanOrEqual(max);
        if (len > max) expect(out).toMatch(new RegExp(`\\n… \\(cut, ${len - out.indexOf('\n')} more characters\\)$`));
        else expect(out).toBe('a'.repeat(len));
      }
    }
  });
});
