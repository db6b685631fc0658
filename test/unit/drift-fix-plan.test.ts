import { describe, expect, it } from 'vitest';
import { inventorySchema } from '../../src/config/schema.js';
import { platformOf } from '../../src/platform/index.js';
import { planDriftFix } from '../../src/runbook/drift-fix-plan.js';
import type { ObservedState } from '../../src/runbook/types.js';
import { referenceDrift } from '../../src/status/references.js';
import type { ReferenceLook } from '../../src/worker/references.js';
import { drift } from '../../commands/drift.js';

const fp = `SHA256:${'A'.repeat(43)}`;
const inventory = inventorySchema.parse({
  workspace: { roles: { approve: ['UBOB'] } },
  clusters: [
    {
      name: 'ocp',
      etcd: { endpoints: ['https://10.0.0.1:2379'] },
      platform: { kind: 'systemd' },
      members: ['1', '2', '4'].map((n) => ({ name: `m${n}`, host: `master-${n}.example.com`, ssh: { user: 'root', keyFile: '/k', hostKeyFingerprint: fp } })),
    },
  ],
});
const cluster = inventory.clusters[0]!;
const members = ['1', '2', '4'].map((n) => ({ name: `m${n}`, peerURLs: [`https://10.0.0.${n}:2380`], clientURLs: [`https://10.0.0.${n}:2379`], inventoryHost: `master-${n}.example.com` }));
const state: ObservedState = { members: [], leaderHex: null, raftIndex: 1, revision: 1, at: '2026-11-27T00:00:00Z' };
const req = { runId: 'r-0000abcd', requestedBy: 'UALICE', channelId: 'C1' };

function look(member: string, refIndex: number, entries: string[]): ReferenceLook {
  const m = cluster.members.find((x) => x.name === member)!;
  const ref = platformOf(cluster).references(m)[refIndex]!;
  const d = referenceDrift(ref.names, entries, members);
  return { member, host: m.host, ref, state: d.stale.length || d.missing.length ? 'drift' : 'ok', entries, drift: d };
}

describe('planDriftFix', () => {
  it('plans one destructive step per master with drift, keeping the host names a list already used', () => {
    const looks = [
      look('m1', 0, ['https://master-1.example.com:2379', 'https://master-2.example.com:2379', 'https://master-3.example.com:2379']),
      look('m1', 1, ['m1=https://10.0.0.1:2380', 'm2=https://10.0.0.2:2380', 'm4=https://10.0.0.4:2380']),
      look('m2', 1, ['m1=https://10.0.0.1:2380', 'm2=https://10.0.0.2:2380']),
    ];
    const out = planDriftFix(inventory, cluster, state, looks, req, new Date());
    if (!out.ok) throw new Error(out.reason);
    expect(out.run.runbook).toBe('drift-fix');
    expect(out.run.steps.map((s) => [s.kind, s.host, s.destructive])).toEqual([
      ['rewrite-references', 'm1', true],
      ['rewrite-references', 'm2', true],
    ]);
    const [s1, s2] = out.run.steps as Extract<(typeof out.run.steps)[number], { kind: 'rewrite-references' }>[];
    expect(s1!.params.files).toEqual([{ path: '/etc/origin/master/master-config.yaml', what: 'master-config.yaml etcdClientInfo.urls', from: looks[0]!.state === 'drift' ? looks[0]!.entries : [], to: ['https://master-1.example.com:2379', 'https://master-2.example.com:2379', 'https://10.0.0.4:2379'] }]);
    expect(s1!.operation).toContain('then master-restart api where the host has it, else systemctl restart atomic-openshift-master-api');
    expect(s2!.params.files[0]!.to).toEqual(['m1=https://10.0.0.1:2380', 'm2=https://10.0.0.2:2380', 'm4=https://10.0.0.4:2380']);
    expect(s2!.operation).not.toContain('master-restart');
    expect(out.run.rationale).toContain('m1: master-config.yaml etcdClientInfo.urls names https://master-3.example.com:2379, misses https://10.0.0.4:2379');
  });

  it('refuses when nothing the bot may rewrite disagrees', () => {
    const out = planDriftFix(inventory, cluster, state, [look('m1', 1, ['m1=https://10.0.0.1:2380', 'm2=https://10.0.0.2:2380', 'm4=https://10.0.0.4:2380'])], req, new Date());
    expect(out).toEqual({ ok: false, reason: expect.stringContaining("nothing to fix on ocp's masters") });
  });

  it('/etcd drift reads with the read role; fix needs destroy; odd arguments are named', () => {
    expect(drift.roleFor!(['fix'])).toBe('destroy');
    expect(drift.roleFor!(['ocp'])).toBe('read');
    const ctx = { inventory, userId: 'U1', channelId: 'C1', commands: [] };
    expect(drift.run(['ocp', 'fix'], ctx)).toMatchObject({ kind: 'job', job: { name: 'plan-drift-fix', data: { cluster: 'ocp' } } });
    expect(drift.run(['fix', 'ocp'], ctx)).toMatchObject({ kind: 'job', job: { name: 'plan-drift-fix' } });
    expect(() => drift.run(['ocp', 'now'], ctx)).toThrow(/unexpected argument "now"/);
  });
});
