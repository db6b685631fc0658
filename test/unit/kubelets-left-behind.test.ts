import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/load.js';
import { processStep, type EngineDeps } from '../../src/runbook/engine.js';
import { planKubeletsRenew } from '../../src/runbook/kubelets-plan.js';
import type { LeaseGuard, RunLease, RunStore } from '../../src/runbook/store.js';
import { transition, type RunEvent } from '../../src/runbook/transition.js';
import type { CommandOffer, ObservedState, Run } from '../../src/runbook/types.js';
import { leftBehind } from '../../src/steps/index.js';
import { hostsNotReady, lookScript, type lookAt } from '../../src/worker/host-readiness.js';
import { memoryLedger } from '../support/ledger.js';

const fp = 'SHA256:' + 'A'.repeat(43);
const ssh = `ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${fp} }`;
const inv = parseInventory(
  `workspace: { roles: { destroy: [UALICE], approve: [UBOB] } }
clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379"] }
    kubeconfig: /etc/etcd-medic/prod.kubeconfig
    members:
      - { name: m1, host: 10.0.0.1, ${ssh} }
    nodes:
      - { name: w1, host: 10.0.1.1, ${ssh} }
`,
  'inventory.yaml',
);
const T0 = new Date('2026-11-27T01:00:00.000Z');
const STATE: ObservedState = { members: [], leaderHex: null, raftIndex: 1, revision: 1, at: T0.toISOString() };

/** A renewal of m1 and w1 whose first restart ran (m1's kubelet bootstraps now), driven through `transition` as the engine does. */
function runAfterFirstRestart(): { run: () => Run; apply: (e: RunEvent) => void } {
  const out = planKubeletsRenew(inv, inv.clusters[0]!, STATE, { runId: 'r-0000beef', nodes: [], requestedBy: 'UALICE', channelId: 'C1' }, T0);
  if (!out.ok) throw new Error(out.reason);
  let run = out.run;
  const apply = (e: RunEvent) => {
    const t = transition(run, e, T0);
    if ('refused' in t) throw new Error(t.refused);
    run = { ...t.run, version: run.version + 1 };
  };
  apply({ kind: 'open-gate', step: 0, state: STATE, ttlMs: 600_000 });
  apply({ kind: 'approve', step: 0, hash: run.gate!.hash, by: 'UBOB' });
  apply({ kind: 'start-step', step: 0, token: 'w/1' });
  apply({ kind: 'complete-step', step: 0, token: 'w/1', summary: 'kubelet of m1 stopped, moved aside, started again' });
  apply({ kind: 'open-gate', step: 1, state: STATE, ttlMs: 600_000 });
  return { run: () => run, apply };
}

describe('a renewal that ends before its CSRs are approved', () => {
  it('rejected at the next node: the thread and the timeline say loudly that m1 was restarted without its certificate, with the commands to fix it and a /etcd csr button', async () => {
    const r = runAfterFirstRestart();
    // The fault: the approver rejects w1's restart; m1's kubelet already waits for its CSR, which only the last step would approve.
    r.apply({ kind: 'stop', how: 'reject', by: 'UBOB' });
    let run = r.run();
    const threads: { text: string; offer?: CommandOffer }[] = [];
    const store = {
      get: async () => structuredClone(run),
      apply: async (_id: string, event: RunEvent, now: Date, _guard?: LeaseGuard) => {
        const t = transition(run, event, now);
        if ('refused' in t) return { run: structuredClone(run), changed: false, refused: t.refused };
        run = { ...t.run, version: run.version + 1 };
        return { run: structuredClone(run), changed: true };
      },
      lockHolder: async () => run.runId,
      unlockCluster: async () => true,
    } as unknown as RunStore;
    const deps: EngineDeps = {
      store,
      executors: new Proxy({}, { get: () => async () => ({ summary: 'ran' }) }) as EngineDeps['executors'],
      observe: async () => STATE,
      notify: { planChanged: async () => undefined, thread: async (_r, text, offer) => void threads.push({ text, offer }), record: async () => undefined },
      enqueueStep: async () => undefined,
      approvalTtlMs: 600_000,
      hmacKey: 'k',
      ledger: memoryLedger('k').ledger,
      now: () => T0,
      log: { info() {}, warn() {}, error() {}, debug() {} } as never,
      leftBehind,
    };
    const lease: RunLease = { token: 'w/2', lost: false, signal: new AbortController().signal };
    await processStep(run.runId, 1, deps, lease);
    expect(run.status).toBe('rejected');
    const loud = threads.find((t) => /rotating_light/.test(t.text));
    expect(loud?.text, threads.map((t) => t.text).join('\n')).toContain('Run `r-0000beef` ended REJECTED with work left half-done on a host (nothing was deleted)');
    expect(loud!.text).toContain('m1: kubelet restarted without its client certificate: it is NotReady until its client and serving CSRs are approved (`/etcd csr prod`)');
    expect(loud!.text).toContain('`mv /etc/kubernetes/etcd-medic-aside/kubelet-client-current.pem.r-0000beef /var/lib/kubelet/pki/kubelet-client-current.pem && mv /etc/kubernetes/etcd-medic-aside/kubelet.conf.r-0000beef /etc/kubernetes/kubelet.conf && systemctl restart kubelet`');
    expect(loud!.text).not.toContain('w1:');
    expect(loud!.offer).toEqual({ command: 'csr', args: ['prod'], label: '/etcd csr prod' });
  });

  it('a restart cut off mid-step names its node as possibly stopped; one that refused or put its files back, and a run whose CSR step ended, leave nothing to say', () => {
    const r = runAfterFirstRestart();
    r.apply({ kind: 'approve', step: 1, hash: r.run().gate!.hash, by: 'UBOB' });
    r.apply({ kind: 'start-step', step: 1, token: 'w/1' });
    r.apply({ kind: 'fail-step', step: 1, token: 'w/1', error: 'on 10.0.1.1: connection lost' });
    const text = leftBehind(r.run())!.text;
    expect(text).toContain('on 2 hosts');
    expect(text).toContain('w1: its restart did not finish, so its kubelet may be stopped with its files aside');
    expect(text).toContain('`systemctl is-active kubelet`');

    const refused = runAfterFirstRestart();
    refused.apply({ kind: 'approve', step: 1, hash: refused.run().gate!.hash, by: 'UBOB' });
    refused.apply({ kind: 'start-step', step: 1, token: 'w/1' });
    refused.apply({ kind: 'fail-step', step: 1, token: 'w/1', error: 'on 10.0.1.1: exit 3: refused: there is no bootstrap kubeconfig at /etc/kubernetes/bootstrap-kubelet.conf: without its client certificate the kubelet could not bootstrap, so nothing was stopped or moved.' });
    expect(leftBehind(refused.run())!.text).not.toContain('w1:');

    const done = runAfterFirstRestart().run();
    done.status = 'done';
    expect(leftBehind(done)).toBeNull();
  });
});

describe('a node that could not come back, found before any kubelet is stopped', () => {
  it("every node's bootstrap kubeconfig is looked at when the run is planned (and before each restart): a missing one refuses the run, naming the node and what to put there", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medic-bootstrap-'));
    try {
      writeFileSync(join(dir, 'w1.conf'), 'token: abc');
      // The fault: m1 has no bootstrap kubeconfig (w1 has one); m1 is restarted first, w1 after it.
      const local = parseInventory(
        `clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379"] }
    kubeconfig: /etc/etcd-medic/prod.kubeconfig
    members:
      - { name: m1, host: 10.0.0.1, ${ssh}, kubeletBootstrapConfig: ${dir}/m1.conf }
    nodes:
      - { name: w1, host: 10.0.1.1, ${ssh}, kubeletBootstrapConfig: ${dir}/w1.conf }
`,
        'inventory.yaml',
      );
      const c = local.clusters[0]!;
      const out = planKubeletsRenew(local, c, STATE, { runId: 'r-0000cafe', nodes: [], requestedBy: 'UALICE', channelId: 'C1' }, T0);
      if (!out.ok) throw new Error(out.reason);
      // The probe run here by bash, as the host would run it (every tool found).
      const look: typeof lookAt = async (_m, tools, _t, layout = []) => {
        const r = spawnSync('bash', ['-c', lookScript([], layout)], { encoding: 'utf8' });
        const misfit = r.stdout.split('\n').filter((l) => l.startsWith('layout:')).map((l) => l.slice('layout:'.length));
        return { reachable: true, found: Object.fromEntries(tools.map((t) => [t, true])), versions: {}, layout: misfit };
      };
      const why = await hostsNotReady(c, out.run.steps, 0, { look });
      expect(why).toContain(`m1 (10.0.0.1) is not laid out as a kubeadm host: there is no bootstrap kubeconfig at ${dir}/m1.conf, so the kubelet of m1 could not bootstrap once its client certificate is aside`);
      expect(why).not.toContain('w1 (10.0.1.1)');
      // Before w1's restart (step 2) only w1 is asked about: m1's restart is behind the run.
      expect(await hostsNotReady(c, out.run.steps, 1, { look })).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
