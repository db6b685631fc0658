import { describe, expect, it } from 'vitest';
import type { Run, StepStatus } from '../../src/runbook/types.js';
import { leftBehind } from '../../src/steps/index.js';
import type { StepSpec } from '../../src/steps/types.js';
import { fenceFailure } from '../../src/worker/steps/quorum-steps.js';

const place = (n: number) => ({
  name: `m${n}`,
  host: `10.0.0.${n}`,
  config: '/etc/kubernetes/manifests/etcd-member.yaml',
  configAside: '/etc/kubernetes/etcd-medic-aside/etcd-member.yaml.r-1',
  asideDir: '/etc/kubernetes/etcd-medic-aside',
  dataDir: '/var/lib/etcd',
  dataAside: '/var/lib/etcd.before-r-1',
  pkiDir: '/etc/ssl/etcd',
  clientHost: `10.0.0.${n}`,
  peerUrl: `https://10.0.0.${n}:2380`,
  clientUrl: `https://10.0.0.${n}:2379`,
  listen: [`10.0.0.${n}:2379`],
});

const fence = (hosts: number[], unconfirmed: string[] = []): StepSpec => ({ kind: 'fence', title: 'Fence', destructive: true, operation: 'fence', params: { hosts: hosts.map(place), unconfirmed } });
const stopStep: StepSpec = { kind: 'stop-and-move-aside', title: 'Stop m3', destructive: true, operation: 'stop', host: 'm3', params: { ...place(3), listen: ['10.0.0.3:2379'] } } as unknown as StepSpec;
const write = (n: number): StepSpec => ({ kind: 'write-manifest', title: `Start m${n}`, destructive: false, operation: 'write', host: `m${n}`, params: {} } as unknown as StepSpec);
const force: StepSpec = { kind: 'force-new-cluster', title: 'Force m1', destructive: true, operation: 'force', params: {} } as unknown as StepSpec;

function run(runbook: Run['runbook'], steps: StepSpec[], statuses: StepStatus[], status: Run['status'] = 'cancelled'): Run {
  return { runId: 'r-1', cluster: 'prod', runbook, status, steps, records: statuses.map((s) => ({ status: s })) } as unknown as Run;
}

/** What a run that ends early says of the members one of its steps stopped and no later step started again. */
describe('members a run stopped and left stopped', () => {
  it('a replace cancelled after the stop: where the manifest and data are, and that a new replace carries on; nothing once the member was started again', () => {
    const text = leftBehind(run('replace', [stopStep, write(3)], ['done', 'not_run']))!.text;
    expect(text).toContain('etcd of m3 stopped by this run and not started again: m3: /etc/kubernetes/manifests/etcd-member.yaml kept at /etc/kubernetes/etcd-medic-aside/etcd-member.yaml.r-1, data at /var/lib/etcd.before-r-1. `/etcd replace m3 prod` again carries on from here');
    expect(leftBehind(run('replace', [stopStep, write(3)], ['done', 'done'], 'failed'))).toBeNull();
    // Refused before it changed the host: nothing said.
    expect(leftBehind({ ...run('replace', [stopStep], ['failed'], 'failed'), records: [{ status: 'failed', error: 'another execution … nothing was done by this one' }] } as unknown as Run)).toBeNull();
  });

  it('a restore-quorum that fails in the grow-back: the fenced member not grown back is named, with a replace to carry on (quorum holds again), never a second restore-quorum; a host confirmed down is not', () => {
    const steps = [fence([2, 3], ['m3']), force, write(2)];
    const text = leftBehind(run('restore-quorum', steps, ['done', 'done', 'failed'], 'failed'))!.text;
    expect(text).toContain('etcd of m2 fenced by this run and not started again');
    expect(text).toContain('now that the survivor runs as a new cluster (cluster ID mismatch): `/etcd replace m2 prod` carries on');
    expect(text).not.toContain('m3');
    const before = leftBehind(run('restore-quorum', steps, ['done', 'not_run', 'not_run']))!.text;
    expect(before).toContain('`/etcd restore-quorum prod` carries on');
  });

  it('a fence that fails on one host while another is fenced names the fenced one and where its data is; the one that refused before acting is not named', () => {
    // The fault: m3 still runs, so its script refuses before it changes anything, while m2's script fences m2.
    const error = fenceFailure([
      { name: 'm2', outcome: { status: 'fulfilled', value: 'm2: manifest moved to /etc/kubernetes/etcd-medic-aside/etcd-member.yaml.r-1; etcd is stopped; data dir moved to /var/lib/etcd.before-r-1' } },
      { name: 'm3', outcome: { status: 'rejected', reason: new Error('on 10.0.0.3: exit 6: etcd of m3 still listens on 10.0.0.3:2380: it is not dead, refusing to fence it') } },
    ]);
    const failed = { ...run('restore-quorum', [fence([2, 3]), force], ['failed', 'not_run'], 'failed'), records: [{ status: 'failed', error }, { status: 'not_run' }] } as unknown as Run;
    const text = leftBehind(failed)!.text;
    expect(text).toContain('etcd of m2 fenced by this run and not started again (its step did not finish: each may be stopped, or still running): m2: /etc/kubernetes/manifests/etcd-member.yaml kept at');
    expect(text).toContain('`/etcd restore-quorum prod` carries on');
    expect(text).not.toContain('m3');
    // A host that failed partway (its connection lost mid-script) may be fenced: named too.
    const partway = fenceFailure([
      { name: 'm2', outcome: { status: 'rejected', reason: new Error('on 10.0.0.2: exit 255: connection lost') } },
      { name: 'm3', outcome: { status: 'rejected', reason: new Error('on 10.0.0.3: exit 6: etcd of m3 still runs: it is not dead, refusing to fence it') } },
    ]);
    const both = leftBehind({ ...failed, records: [{ status: 'failed', error: partway }, { status: 'not_run' }] } as unknown as Run)!.text;
    expect(both).toContain('etcd of m2 fenced by this run');
    expect(both).not.toContain('m3:');
    // Every host refused before acting: nothing is said.
    const none = fenceFailure(['m2', 'm3'].map((n) => ({ name: n, outcome: { status: 'rejected', reason: new Error(`etcd of ${n} still runs: it is not dead, refusing to fence it`) } as PromiseSettledResult<string> })));
    expect(leftBehind({ ...failed, records: [{ status: 'failed', error: none }, { status: 'not_run' }] } as unknown as Run)).toBeNull();
  });
});
