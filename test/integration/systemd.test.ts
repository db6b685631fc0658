import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import type { LabHost } from '../../src/lab/harness.js';
import { envFlag } from '../../src/platform/flags.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { approveStep, latest, planRun, takeBackup, textOf, threadOf, waitForRunStatus } from '../support/slack-view.js';

const ROLES = { destroy: ['UALICE'], approve: ['UBOB'], operate: ['UALICE'] };

/**
 * The runbooks on OpenShift 3 style masters: etcd is the `etcd` systemd unit
 * reading /etc/etcd/etcd.conf, the API server the atomic-openshift-master-api
 * unit. The bot's own commands (systemctl, the etcd.conf edits) run over the
 * real sshd against the lab's systemctl.
 */
describe('runbooks on a systemd (OpenShift 3) cluster', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('systemd', 102, {
      roles: ROLES,
      lab: { platform: 'systemd' },
      // The same hosts described as kubeadm masters: a plan for them must be refused before it acts.
      editInventory: (inv) => {
        const c = inv.clusters[0];
        inv.clusters.push({
          ...c,
          name: 'wrong',
          platform: { kind: 'kubeadm' },
          members: c.members.map((m: Record<string, unknown>) => ({ name: m.name, host: m.host, ssh: m.ssh, manifestsDir: join(dirname(String(m.dataDir)), '../../etc/kubernetes/manifests'), dataDir: m.dataDir })),
        });
      },
    });
    // etcd.service as the etcd package ships it (RHEL 7, OpenShift 3): Type=notify, so `systemctl start etcd`
    // returns once etcd has told systemd it is ready, which it does only once it has joined a cluster with a leader.
    for (const h of t.lab.hosts) {
      mkdirSync(join(h.unitDir!, 'etcd.service.d'), { recursive: true });
      writeFileSync(join(h.unitDir!, 'etcd.service.d', '10-package.conf'), '[Service]\nType=notify\n');
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  const conf = (h: LabHost) => readFileSync(h.confFile!, 'utf8');
  const etcdActive = (h: LabHost) => h.units!.state('etcd') === 'active';
  // `systemctl enable` links the unit from the target's .wants directory, as systemd does.
  const enabled = (h: LabHost) => existsSync(join(h.unitDir!, 'multi-user.target.wants', 'etcd.service'));

  const plan = (text: string, header: RegExp) => planRun(t, text, header);

  async function approve(ts: string, step: number): Promise<void> {
    expect(await approveStep(t, ts, step, 'UBOB')).toContain(`Approved step ${step + 1}`);
  }

  async function voters(): Promise<string[]> {
    return (await t.lab.memberList()).filter((m) => m.status === 'started' && !m.learner).map((m) => m.name).sort();
  }

  async function keys(prefix: string, member: string): Promise<number> {
    const { stdout } = await t.lab.etcdctl(['get', prefix, '--prefix', '--keys-only', '--consistency=s'], [t.lab.host(member).clientUrl]);
    return stdout.split('\n').filter(Boolean).length;
  }

  const backup = () => takeBackup(t);

  /** The fault: two of three members die (SIGKILL, systemd does not restart them) and their data dirs are gone. */
  async function loseMajority(): Promise<void> {
    for (const name of ['m2', 'm3']) {
      await t.lab.killMember(name);
      const h = t.lab.host(name);
      renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    }
  }

  it('refuses a plan for hosts that are not laid out as its platform says, before anything runs', async () => {
    const { msg } = await plan('replace m3 wrong --force', /refused|Replace m3 in wrong/);
    const text = textOf(msg);
    expect(text).toContain('is not laid out as a kubeadm host: there is no');
    expect(text).toContain("(the kubelet's static pod directory)");
    expect(text).not.toMatch(/^Replace m3 in wrong/);
    expect(existsSync(t.lab.host('m3').confFile!)).toBe(true);
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
  });

  it('replaces a member whose disk broke: etcd.conf written with state existing, the unit enabled and running, the old data kept aside', async () => {
    for (let i = 0; i < 20; i++) await t.lab.etcdctl(['put', `/before/k${i}`, `v${i}`]);
    await t.lab.corruptMember('m3');

    const { ts, runId } = await plan('replace m3', /^Replace m3 in lab/);
    const planText = textOf(latest(t.slack, ts));
    const m3 = t.lab.host('m3');
    expect(planText).toContain(`systemctl disable etcd; systemctl mask --runtime etcd; systemctl stop etcd`);
    expect(planText).toContain(`write ${m3.confFile}`);
    expect(planText).toContain('systemctl unmask --runtime etcd; systemctl enable etcd; systemctl start etcd');
    await approve(ts, 1); // member remove
    await approve(ts, 2); // stop and move aside
    const done = await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    expect(done).toContain('etcd.conf written from');

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/before/', 'm3')).toBe(20);
    expect(envFlag(conf(m3), 'initial-cluster-state')).toBe('existing');
    expect(envFlag(conf(m3), 'initial-cluster')).toBe(t.lab.hosts.map((h) => `${h.name}=${h.peerUrl}`).join(','));
    expect(etcdActive(m3)).toBe(true);
    expect(enabled(m3)).toBe(true);
    // Started as a Type=notify unit: activating until etcd said it was ready.
    expect(m3.units!.history('etcd').some((s) => s.state === 'activating' && s.sub === 'start')).toBe(true);
    expect(readFileSync(join(`${m3.dataDir}.before-${runId}`, 'member/snap/db'))[0]).toBe(0x5a);
    expect(readFileSync(join(dirname(dirname(m3.confFile!)), 'etcd-medic-aside', `etcd.conf.${runId}`), 'utf8')).toContain('ETCD_INITIAL_CLUSTER_STATE=new');
    // The backup taken first archives /etc/etcd of the member it was taken from (etcd.conf and certificates).
    const backupId = /→ backup (\d{4}-\d{2}-\d{2}_\d{6})/.exec(planText)![1]!;
    const listing = spawnSync('tar', ['tzf', join(t.lab.opts.root, 'backups', 'lab', `static_kuberesources_${backupId}.tar.gz`)], { encoding: 'utf8' }).stdout;
    expect(listing).toMatch(/etc\/etcd\/etcd\.conf/);
    expect(listing).toMatch(/etc\/etcd\/peer\.crt/);
  });

  it('restores quorum through force-new-cluster: ETCD_FORCE_NEW_CLUSTER set, then taken out of etcd.conf again, three voters, every key kept', async () => {
    for (let i = 0; i < 10; i++) await t.lab.etcdctl(['put', `/rq/k${i}`, `v${i}`]);
    await loseMajority();
    const m1 = t.lab.host('m1');
    const restartsBefore = m1.units!.history('etcd').filter((s) => s.state === 'active').length;

    const { ts } = await plan('restore-quorum', /^Restore quorum of lab/);
    expect(textOf(latest(t.slack, ts))).toContain('systemctl unmask --runtime etcd; systemctl enable etcd; systemctl restart etcd');
    await approve(ts, 1); // fence m2, m3
    await approve(ts, 2); // force-new-cluster on m1
    const done = await waitForRunStatus(t.slack, ts, 'DONE', 240_000);
    expect(done).toContain('--force-new-cluster is out of the etcd.conf');

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/rq/', 'm3')).toBe(10);
    expect(envFlag(conf(m1), 'force-new-cluster')).toBeUndefined();
    // Started with the flag, then again without it: two restarts of m1's unit.
    expect(m1.units!.history('etcd').filter((s) => s.state === 'active').length - restartsBefore).toBeGreaterThanOrEqual(2);
    for (const h of t.lab.hosts) expect([h.name, etcdActive(h), enabled(h)]).toEqual([h.name, true, true]);
    // m2's own etcd.conf, kept aside by the fence, is what it starts from again.
    expect(threadOf(t.slack, ts).join('\n')).toMatch(/Start m2 with state \\?"existing\\?": etcd\.conf written from \S+\/etcd-medic-aside\/etcd\.conf\.r-[0-9a-f]{8} with --initial-cluster-state=existing; systemctl unmask --runtime etcd; systemctl enable etcd; systemctl start etcd/);
  });

  it('/etcd drift lists the files on the masters that name a removed member or miss one', async () => {
    // An old member's address still in m1's master-config.yaml, as after a master replaced by hand.
    const m1 = t.lab.host('m1');
    const doc = parseYaml(readFileSync(m1.masterConfig!, 'utf8')) as { etcdClientInfo: { urls: string[] } };
    doc.etcdClientInfo.urls.unshift('https://10.9.9.9:2379');
    writeFileSync(m1.masterConfig!, stringify(doc));
    const since = t.slack.lastSeq;
    await t.command('drift', { user: 'UALICE' });
    const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).startsWith("Files naming etcd's members on lab"), 30_000, since);
    const text = textOf(msg);
    expect(text).toContain('2 files disagree with the member list');
    expect(text).toMatch(/\*m1\* `[^`]+master-config\.yaml` \(master-config\.yaml etcdClientInfo\.urls\): names `https:\/\/10\.9\.9\.9:2379`, which is not in the cluster/);
    // m2 joined the one-member cluster when m3 was not back yet: its ETCD_INITIAL_CLUSTER misses m3.
    expect(text).toContain(`*m2* \`${t.lab.host('m2').confFile}\` (etcd.conf ETCD_INITIAL_CLUSTER): misses \`m3=${t.lab.host('m3').peerUrl}\``);
    expect(text).toMatch(/\*m3\* `[^`]+etcd\.conf` \(etcd\.conf ETCD_INITIAL_CLUSTER\): names every member/);
    expect(text).toMatch(/\*m1\* `\/etc\/sysconfig\/flanneld` \(flanneld FLANNEL_ETCD_ENDPOINTS\): no such file on this host/);
  });

  it('/etcd drift fix rewrites those files from the member list, one approved step per master, and restarts the API server where its config changed', async () => {
    const m1 = t.lab.host('m1');
    const m2 = t.lab.host('m2');
    const apiBefore = m1.units!.pid('atomic-openshift-master-api');
    const { ts, runId } = await plan('drift fix', /^Fix the files that name etcd's members on lab/);
    const planText = textOf(latest(t.slack, ts));
    expect(planText).toContain('master-config.yaml etcdClientInfo.urls https://10.9.9.9:2379,');
    expect(planText).toContain('then master-restart api where the host has it, else systemctl restart atomic-openshift-master-api');
    await approve(ts, 0); // m1: master-config.yaml, and the API server restarted
    await approve(ts, 1); // m2: etcd.conf
    await waitForRunStatus(t.slack, ts, 'DONE', 120_000);

    const urls = (parseYaml(readFileSync(m1.masterConfig!, 'utf8')) as { etcdClientInfo: { urls: string[] } }).etcdClientInfo.urls;
    expect(urls).toEqual(t.lab.hosts.map((h) => h.clientUrl));
    const aside = join(dirname(dirname(m1.confFile!)), 'etcd-medic-aside', `master-config.yaml.${runId}`);
    expect(readFileSync(aside, 'utf8')).toContain('https://10.9.9.9:2379');
    expect(m1.units!.pid('atomic-openshift-master-api')).not.toBe(apiBefore);
    expect(m1.units!.state('atomic-openshift-master-api')).toBe('active');
    expect(envFlag(conf(m2), 'initial-cluster')).toBe(t.lab.hosts.map((h) => `${h.name}=${h.peerUrl}`).join(','));
    expect(etcdActive(m2)).toBe(true);

    const since = t.slack.lastSeq;
    await t.command('drift', { user: 'UALICE' });
    const again = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).startsWith("Files naming etcd's members on lab"), 30_000, since);
    expect(textOf(again)).toContain('every file names every member, and nothing else');
  });

  it('restores quorum from a verified snapshot, with the API server units stopped meanwhile and started after', async () => {
    const { id } = await backup();
    for (let i = 0; i < 5; i++) await t.lab.etcdctl(['put', `/after/k${i}`, `v${i}`]);
    await loseMajority();
    const m1 = t.lab.host('m1');

    const { ts } = await plan(`restore-quorum --snapshot ${id}`, /^Restore quorum of lab/);
    expect(textOf(latest(t.slack, ts))).toContain('systemctl stop atomic-openshift-master-api (those running)');
    await approve(ts, 1); // stop the API servers
    await approve(ts, 2); // fence m2, m3
    await approve(ts, 3); // restore onto m1
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);

    const thread = threadOf(t.slack, ts).join('\n');
    expect(thread).toMatch(/restored onto m1 \(revision \d+, checked offline, KV hash \d+ as recorded\): it leads a one-member cluster/);
    expect(thread).toContain('kube-apiserver stopped on m1, m2, m3');
    expect(thread).toContain('kube-apiserver started again on m1, m2, m3');
    // The API server was down on m1 while its etcd was restored, and is up again.
    const api = m1.units!.history('atomic-openshift-master-api');
    expect(api.some((s) => s.state === 'inactive')).toBe(true);
    expect(m1.units!.state('atomic-openshift-master-api')).toBe('active');
    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    expect(await keys('/after/', 'm2')).toBe(0);
    expect(await keys('/rq/', 'm2')).toBe(10);
  });

  it('/etcd restore brings every member to the snapshot', async () => {
    await t.lab.etcdctl(['put', '/restore/marker', 'before']);
    const { id, revision } = await backup();
    for (let i = 0; i < 3; i++) await t.lab.etcdctl(['put', `/later/k${i}`, `v${i}`]);

    const { ts } = await plan(`restore ${id}`, /^Restore lab to backup/);
    await approve(ts, 2); // stop the API servers
    await approve(ts, 3); // stop etcd everywhere, data aside
    await waitForRunStatus(t.slack, ts, 'DONE', 240_000);

    expect(await voters()).toEqual(['m1', 'm2', 'm3']);
    for (const h of t.lab.hosts) {
      const { stdout } = await t.lab.etcdctl(['endpoint', 'status', '-w', 'json'], [h.clientUrl]);
      expect(Number(/"revision":(\d+)/.exec(stdout)![1])).toBe(revision);
      expect(envFlag(conf(h), 'initial-cluster-state')).toBe('new');
      expect(envFlag(conf(h), 'initial-cluster-token')).toMatch(/^lab-r-[0-9a-f]{8}$/);
      expect(etcdActive(h)).toBe(true);
    }
    expect(await keys('/later/', 'm1')).toBe(0);
    expect(await keys('/restore/marker', 'm3')).toBe(1);
  });
});
