import { describe, expect, it } from 'vitest';
import { COMMANDS, findCommand } from '../../commands/index.js';
import { parseInventory } from '../../src/config/load.js';
import { approvableRows, DETAIL_MAX, layoutRows, type CsrReview, type CsrRow } from '../../src/csr/review.js';
import { UsageError } from '../../src/errors.js';
import { blockLimitViolations } from '../../src/render/block-limits.js';
import { decodeCsrClick, encodeCsrClick, renderCsrReview } from '../../src/render/csr-message.js';
import { describeRow } from '../../src/worker/csr-review.js';

const NOW = new Date('2026-11-24T10:00:00Z');

function row(i: number, pass = true, over: Partial<CsrRow> = {}): CsrRow {
  return {
    name: `csr-${String(i).padStart(5, '0')}`,
    uid: `0000000${i % 10}-aaaa-bbbb-cccc-${String(i).padStart(12, '0')}`,
    requestHash: 'a'.repeat(16),
    createdAt: new Date(NOW.getTime() - i * 1000).toISOString(),
    requestor: { user: 'system:bootstrap:abcdef', groups: ['system:bootstrappers', 'system:authenticated'] },
    signer: 'kubernetes.io/kube-apiserver-client-kubelet',
    usages: ['digital signature', 'client auth'],
    request: { ok: true, cn: `system:node:worker-${i}`, o: ['system:nodes'], dns: [], ips: [], other: [], key: 'EC P-256', signatureValid: true },
    verdict: pass ? { kind: 'kubelet-client', node: `worker-${i}`, pass: true, reasons: [] } : { kind: 'kubelet-client', node: `worker-${i}`, pass: false, reasons: [`node worker-${i} is neither a node of this cluster nor a master in the inventory`, 'x'.repeat(400)] },
    ...over,
  };
}

const review = (rows: CsrRow[], more: string[] = []): CsrReview => ({ id: 'cr-0123abcd', cluster: 'prod', channelId: 'CINC', by: 'UALICE', title: 'Pending CSRs in prod', createdAt: NOW.toISOString(), rows, more });
const texts = (m: { blocks: Record<string, any>[] }) => m.blocks.map((b) => b.text?.text ?? b.elements?.map((e: any) => e.text?.text ?? e.text).join(' ') ?? '').join('\n');

describe('the CSR review message (src/render/csr-message.ts)', () => {
  it('stays within Block Kit limits from none to hundreds of CSRs, summarizing beyond what fits', () => {
    for (const n of [0, 1, DETAIL_MAX, DETAIL_MAX + 1, 60, 135, 400]) {
      const rows = Array.from({ length: Math.min(n, 135) }, (_, i) => row(i, i % 7 !== 3));
      const more = Array.from({ length: Math.max(0, n - 135) }, (_, i) => `csr-more-${i}`);
      const msg = renderCsrReview(review(rows, more), {}, NOW);
      expect(blockLimitViolations(msg.blocks), `${n} CSRs`).toEqual([]);
      const all = texts(msg);
      if (n === 0) expect(all).toContain('No pending CSRs in *prod*');
      // Every CSR is named somewhere in the message.
      for (const r of rows) expect(all).toContain(r.name);
      if (n > 135) expect(all).toContain(`*${n - 120 - DETAIL_MAX} more pending, not in this message:*`);
    }
  });

  it('puts flagged CSRs first, approves all only of the shown ones that pass, and redraws decided rows without buttons', () => {
    const rows = Array.from({ length: 20 }, (_, i) => row(i, i !== 12));
    expect(layoutRows(rows).detailed[0]).toBe(12);
    const r = review(rows);
    const msg = renderCsrReview(r, {}, NOW);
    const buttons = msg.blocks.filter((b) => b.type === 'actions') as any[];
    // The flagged row's approve is a danger button behind a confirmation that says why.
    const flagged = buttons[0]!.elements[0];
    expect(flagged).toMatchObject({ style: 'danger', text: { text: 'Approve FLAGGED csr-00012' } });
    expect(flagged.confirm.text.text).toMatch(/^csr-00012 does not pass policy: node worker-12 is neither/);
    const all = buttons.at(-1)!.elements[0];
    expect(all.text.text).toBe('Approve all 19 that pass policy');
    expect(decodeCsrClick(all.value)).toEqual({ reviewId: 'cr-0123abcd', all: true, count: 19 });

    const outcomes = { 'csr-00001': { state: 'approved' as const, by: 'UBOB', at: NOW.toISOString() } };
    expect(approvableRows(r, outcomes)).toHaveLength(18);
    const redrawn = renderCsrReview(r, outcomes, NOW);
    expect(texts(redrawn)).toContain(':white_check_mark: *Approved* by <@UBOB> at 10:00:00Z');
    expect(redrawn.blocks.filter((b) => b.type === 'actions')).toHaveLength(buttons.length - 1);
  });

  it('shows API-supplied text inert: no mention, link or code break-out', () => {
    const evil = row(1, false, { requestor: { user: 'mallory <!channel> `x`', groups: [] }, request: { ok: true, cn: '<@U123>', o: [], dns: ['a`b'], ips: [], other: [], key: 'EC P-256', signatureValid: true } });
    const all = texts(renderCsrReview(review([evil]), {}, NOW));
    expect(all).not.toMatch(/<!channel>|<@U123>/);
    expect(all).toContain("`mallory &lt;!channel&gt; 'x'`");
    expect(all).toContain("DNS `a'b`");
  });

  it('shows a node name taken from the CN inert too: in the row, its buttons\' confirm texts and the timeline line', () => {
    const evil = row(2, true, { verdict: { kind: 'kubelet-serving', node: '<!channel>', pass: true, reasons: [] }, requestor: { user: 'system:node:<!here>', groups: [] } });
    const drawn = JSON.stringify(renderCsrReview(review([evil]), {}, NOW).blocks);
    expect(drawn).not.toMatch(/<!channel>|<!here>/);
    expect(describeRow(evil)).not.toMatch(/<!channel>|<!here>/);
    expect(describeRow(evil)).toContain('kubelet serving for &lt;!channel&gt;');
  });

  it('decodes only button values it drew', () => {
    const v = { reviewId: 'cr-0123abcd', name: 'csr-abcde', uid: '5b1f6c1e-0c8a-4a3c-9a55-0123456789ab', hash: '0123456789abcdef' };
    expect(decodeCsrClick(encodeCsrClick(v))).toEqual(v);
    for (const bad of [undefined, 42, 'x', '{"r":"cr-1","n":"csr-a"}', JSON.stringify({ r: 'cr-0123abcd', n: 'Bad_Name', u: 'ab', h: '0123456789abcdef' }), JSON.stringify({ r: 'cr-0123abcd', a: 0 }), JSON.stringify({ r: 'cr-0123abcd', a: 2, n: 'x' })]) {
      expect(decodeCsrClick(bad)).toBeNull();
    }
  });
});

describe('/etcd csr (commands/csr.ts)', () => {
  const FP = 'SHA256:' + 'A'.repeat(43);
  const inv = parseInventory(`clusters:
  - name: prod
    etcd: { endpoints: [https://10.0.0.1:2379] }
    members:
      - { name: master-1, host: 10.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${FP} } }`, 'i.yaml');
  const cmd = findCommand('csr')!;
  const run = (line: string) => cmd.run(line.split(' ').filter(Boolean), { inventory: inv, userId: 'U1', channelId: 'C1', commands: COMMANDS });
  const err = (line: string) => {
    try {
      run(line);
      return 'no error';
    } catch (e) {
      return e instanceof UsageError ? e.message : String(e);
    }
  };

  it('lists with the read role and decides with the approve role', () => {
    expect(run('')).toMatchObject({ kind: 'job', job: { name: 'csr', data: { cluster: 'prod' } } });
    expect(run('prod')).toMatchObject({ job: { name: 'csr', data: { cluster: 'prod' } } });
    expect(run('approve csr-a csr-b csr-a')).toMatchObject({ job: { name: 'csr-decide', data: { decision: 'approve', cluster: 'prod', names: ['csr-a', 'csr-b'] } } });
    expect(run('prod deny csr-a')).toMatchObject({ job: { name: 'csr-decide', data: { decision: 'deny', names: ['csr-a'] } } });
    expect(cmd.roleFor!([])).toBe('read');
    expect(cmd.roleFor!(['prod'])).toBe('read');
    expect(cmd.roleFor!(['approve', 'csr-a'])).toBe('approve');
    expect(cmd.roleFor!(['prod', 'deny', 'csr-a'])).toBe('approve');
  });

  it('refuses bad input before anything is queued', () => {
    expect(err('approve')).toBe('name the CSR(s) to approve (`/etcd csr` lists them)');
    expect(err('approve csr-a Evil;rm')).toBe('"Evil;rm" is not a CSR name (lowercase letters, digits, "-" and ".")');
    expect(err('prod extra')).toMatch(/^unexpected argument "extra"/);
    expect(err('prod x approve csr-a')).toBe('unexpected argument "x"');
    expect(err(`approve ${Array.from({ length: 51 }, (_, i) => `c${i}`).join(' ')}`)).toMatch(/^at most 50 CSRs at once/);
  });
});
