import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUntilEnded } from '../support/crash-workers.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { latest, planRun, textOf, threadOf } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'] };
const SUBNET = 139;
const ip = (n: number) => `127.0.${SUBNET}.${n}`;
/** The address m3's machine had before it was rebuilt: nothing runs there now. */
const OLD_M3 = ip(9);

describe('after a replace, the API load balancer in front of the masters is checked against their addresses (lab: three kubeadm masters behind a load balancer)', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('replace-lb', SUBNET, {
      roles: ROLES,
      lab: { kube: true },
      editInventory(inv) {
        inv.clusters[0].kubeReadyWaitSeconds = 60;
        // The pool as the operators configured it and wrote it down: m3's old machine, not its new address.
        inv.clusters[0].apiLoadBalancer = { backends: [`${ip(1)}:6443`, `${ip(2)}:6443`, `${OLD_M3}:6443`] };
      },
    });
    // The fault: the load balancer's pool was not changed when m3's machine came back at a new address.
    t.lab.kube!.setLbPool([`${ip(1)}:6443`, `${ip(2)}:6443`, `${OLD_M3}:6443`], 'roundrobin');
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('a replace of m3 ends DONE with a caveat naming the stale backend to take out and m3\'s address to add; etcd whole, m3 Ready', async () => {
    // m3's etcd dies (its machine is being rebuilt); it is replaced.
    await t.lab.killMember('m3');
    const plan = await planRun(t, 'replace m3', /^Replace m3 in lab/, 'UALICE');
    const planned = textOf(latest(t.slack, plan.ts));
    // The plan says the load balancer is looked at, and against which pool.
    expect(planned).toContain(`Then the API load balancer (the kubeconfig's server): fresh TLS connections through it, each backend named by its serving certificate; m3 must be among them and none may land on a server that is no master; its pool as listed in the inventory (${ip(1)}:6443, ${ip(2)}:6443, ${OLD_M3}:6443) held against the masters' addresses, each entry probed.`);

    const header = await approveUntilEnded(t, plan.ts, 'UBOB', 150_000);
    const thread = threadOf(t.slack, plan.ts).join('\n');
    expect(header, thread).toBe('Replace m3 in lab: DONE: etcd healthy, API load balancer not yet');
    const lb = `${ip(100)}:6443`;
    // Through the load balancer: m1 and m2 answered, m3 never (its address is not in the pool).
    expect(thread).toMatch(new RegExp(`12 connections through the load balancer ${lb.replace(/\./g, '\\.')} reached (m1 ×\\d+, m2 ×\\d+|m2 ×\\d+, m1 ×\\d+)`));
    expect(thread).toContain(`m3 (now at ${ip(3)}) was not reached in 12 connections through the load balancer ${lb}`);
    // The listed pool: m3's new address missing, the old one named, with what answers there (nothing).
    expect(thread).toContain(`lacks m3's ${ip(3)}:6443: add it`);
    expect(thread).toContain(`holds ${OLD_M3}:6443, which is no master's address (nothing answers there (ECONNREFUSED)): the address of a master replaced or rebuilt elsewhere? Take it out of the pool`);
    expect(thread).toMatch(/:warning: Run `r-[0-9a-f]{8}` finished: every step done; .*etcd healthy, API load balancer not yet: /);

    // etcd is whole and m3 Ready: the load balancer is what is left to fix, and the run says only that.
    const members = await t.lab.memberList();
    expect(members.filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    const ready = await t.lab.kube!.kubectl(['get', 'node', 'm3', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    expect(ready.stdout.trim()).toBe('True');
    expect(thread).not.toContain('Kubernetes not yet');
  }, 240_000);
});
