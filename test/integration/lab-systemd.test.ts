import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inventorySchema, type Inventory } from '../../src/config/schema.js';
import { portOpen, startLab, type Lab, type LabHost } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import type { UnitSupervisor } from '../../src/lab/unit-supervisor.js';
import { sshExec, type ExecResult } from '../../src/ssh/exec.js';
import { sh } from '../../src/ssh/shell.js';
import { sshTargetOf } from '../../src/worker/ssh-target.js';

/** OpenShift 3 style masters: etcd as a systemd unit, driven over real SSH with the lab's systemctl. */
describe('lab with systemd masters', () => {
  let lab: Lab;
  let inventory: Inventory;
  let m3: LabHost;
  let units: UnitSupervisor;

  /** A command on a member's host, reached exactly as the bot reaches it: from the inventory, host key pinned. */
  const ssh = (member: string, command: string, input?: string): Promise<ExecResult> => {
    const m = inventory.clusters[0]!.members.find((x) => x.name === member)!;
    return sshExec(sshTargetOf(m), command, { commandTimeoutMs: 100_000, input });
  };
  const healthy = async (h: LabHost) => (await lab.etcdctl(['endpoint', 'health'], [h.clientUrl], true)).code === 0;
  const environOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'lab-systemd'), subnet: 97, platform: 'systemd' });
    inventory = inventorySchema.parse(parseYaml(readFileSync(lab.inventoryPath, 'utf8')));
    m3 = lab.host('m3');
    units = m3.units!;
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it("a session on a lab host has the lab's PATH alone, whatever this machine's root ~/.bashrc adds (it is not run there)", async () => {
    const r = await ssh('m3', 'echo "$PATH"');
    expect(r).toMatchObject({ code: 0, stdout: `${m3.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n`, stderr: '' });
  });

  it('comes up healthy, etcd and the master API units active and enabled, etcd configured only from etcd.conf, with an inventory the bot accepts', async () => {
    const health = await lab.etcdctl(['endpoint', 'health']);
    for (const url of lab.endpoints) expect(health.stdout + health.stderr).toContain(`${url} is healthy`);

    const cluster = inventory.clusters[0]!;
    expect(cluster.platform).toEqual({ kind: 'systemd', unit: 'etcd', confFile: '/etc/etcd/etcd.conf', dataDir: '/var/lib/etcd', pkiDir: '/etc/etcd', apiserverUnits: ['atomic-openshift-master-api'], masterConfig: '/etc/origin/master/master-config.yaml', flanneldConfig: '/etc/sysconfig/flanneld', kubeletCert: '/etc/origin/node/certificates/kubelet-client-current.pem', kubeletConfig: '/etc/origin/node/node.kubeconfig', kubeletBootstrapConfig: '/etc/origin/node/bootstrap.kubeconfig', kubeletUnit: 'atomic-openshift-node' });
    expect(cluster.members[2]).toMatchObject({ name: 'm3', host: m3.ip, confFile: m3.confFile, dataDir: m3.dataDir, pkiDir: m3.pkiDir, masterConfig: m3.masterConfig });
    expect(cluster.members[2]).not.toHaveProperty('manifestsDir');

    expect(await ssh('m3', 'systemctl is-active etcd atomic-openshift-master-api')).toMatchObject({ code: 0, stdout: 'active\nactive\n' });
    expect(await ssh('m3', 'systemctl is-enabled etcd.service')).toMatchObject({ code: 0, stdout: 'enabled\n' });
    expect(await ssh('m3', 'systemctl show etcd --property=ActiveState,SubState --no-pager')).toMatchObject({ code: 0, stdout: 'ActiveState=active\nSubState=running\n' });

    // etcd got no flags: everything came from the EnvironmentFile, quotes removed.
    const pid = units.pid()!;
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toBe('/usr/bin/etcd\0');
    expect(environOf(pid)).toEqual(expect.arrayContaining(['ETCD_NAME=m3', `ETCD_DATA_DIR=${m3.dataDir}`, 'ETCD_CLIENT_CERT_AUTH=true', `ETCD_CERT_FILE=${m3.pkiDir}/server.crt`]));
    const conf = (await ssh('m3', sh`cat ${m3.confFile!}`)).stdout;
    expect(conf).toContain('ETCD_INITIAL_CLUSTER_STATE=new');

    const master = parseYaml((await ssh('m3', sh`cat ${m3.masterConfig!}`)).stdout) as { kind: string; etcdClientInfo: Record<string, unknown> };
    expect(master.kind).toBe('MasterConfig');
    expect(master.etcdClientInfo).toEqual({ ca: 'master.etcd-ca.crt', certFile: 'master.etcd-client.crt', keyFile: 'master.etcd-client.key', urls: lab.endpoints });
    // openshift-ansible leaves no CA key on the masters.
    expect((await ssh('m3', sh`ls ${m3.pkiDir}`)).stdout.split('\n').filter(Boolean).sort()).toEqual(['ca.crt', 'etcd.conf', 'peer.crt', 'peer.key', 'server.crt', 'server.key']);
  });

  it('`systemctl stop etcd` returns once the member is down and is-active says inactive; `systemctl start etcd` brings it back', async () => {
    const stop = await ssh('m3', 'systemctl stop etcd');
    const returnedAt = Date.now();
    expect(stop).toMatchObject({ code: 0, stderr: '' });
    expect(await portOpen(m3.ip, lab.opts.clientPort)).toBe(false);
    expect(units.pid()).toBeNull();
    expect(await ssh('m3', 'systemctl is-active etcd')).toMatchObject({ code: 3, stdout: 'inactive\n' });
    expect(units.downThroughout('etcd', returnedAt, Date.now())).toBe(true);

    expect(await ssh('m3', 'systemctl start etcd')).toMatchObject({ code: 0, stderr: '' });
    expect(units.pid()).not.toBeNull();
    expect(await ssh('m3', 'systemctl is-active etcd')).toMatchObject({ code: 0, stdout: 'active\n' });
    await waitFor('m3 healthy again', () => healthy(m3), 20_000, 200);
  });

  it('`systemctl restart etcd` runs a new process, which reads the EnvironmentFile as changed since', async () => {
    const before = units.pid()!;
    expect(environOf(before)).toContain('ETCD_SNAPSHOT_COUNT=10000');
    const r = await ssh('m3', sh`sed -i 's/^ETCD_SNAPSHOT_COUNT=.*/ETCD_SNAPSHOT_COUNT=5000/' ${m3.confFile!} && systemctl daemon-reload && systemctl restart etcd`);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const after = units.pid()!;
    expect(after).not.toBeNull();
    expect(after).not.toBe(before);
    expect(environOf(after)).toContain('ETCD_SNAPSHOT_COUNT=5000');
    expect((await ssh('m3', 'systemctl show etcd -p MainPID --value')).stdout).toBe(`${after}\n`);
    await waitFor('m3 healthy after the restart', () => healthy(m3), 20_000, 200);
  });

  it('an unknown unit: exit 5 and systemd\'s messages', async () => {
    expect(await ssh('m3', 'systemctl start etcd2')).toMatchObject({ code: 5, stderr: 'Failed to start etcd2.service: Unit etcd2.service not found.\n' });
    expect(await ssh('m3', 'systemctl stop etcd2.service')).toMatchObject({ code: 5, stderr: 'Failed to stop etcd2.service: Unit etcd2.service not loaded.\n' });
    expect(await ssh('m3', 'systemctl is-active etcd2')).toMatchObject({ code: 3, stdout: 'inactive\n' });
  });

  it('disable and enable change is-enabled only: the unit keeps running', async () => {
    const pid = units.pid();
    expect(await ssh('m3', 'systemctl disable etcd')).toMatchObject({ code: 0 });
    expect(await ssh('m3', 'systemctl is-enabled etcd')).toMatchObject({ code: 1, stdout: 'disabled\n' });
    expect(units.pid()).toBe(pid);
    expect(await ssh('m3', 'systemctl enable etcd && systemctl is-enabled etcd')).toMatchObject({ code: 0, stdout: 'enabled\n' });
  });

  it('drop-ins are read at the next start: a second ExecStart is refused before anything stops, a reset ExecStart= runs the new command', async () => {
    const dropIns = join(m3.unitDir!, 'etcd.service.d');
    const write = (text: string) => ssh('m3', sh`mkdir -p ${dropIns} && cat > ${join(dropIns, '50-lab.conf')} && systemctl daemon-reload`, text);
    const pid = units.pid();
    const wrapper = "/bin/sh -c 'echo started-by-drop-in; exec /usr/bin/etcd'";

    await write(`[Service]\nExecStart=${wrapper}\n`);
    const refused = await ssh('m3', 'systemctl restart etcd');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^Failed to start etcd\.service: Unit etcd\.service has a bad unit file setting\./);
    expect(units.pid()).toBe(pid);

    await write(`[Service]\nExecStart=\nExecStart=${wrapper}\n`);
    expect(await ssh('m3', 'systemctl restart etcd')).toMatchObject({ code: 0, stderr: '' });
    const wrapped = units.pid()!;
    expect(wrapped).not.toBe(pid);
    await waitFor('m3 healthy under the drop-in', () => healthy(m3), 20_000, 200);
    expect(readFileSync(join(m3.logDir, 'etcd.log'), 'utf8')).toContain('started-by-drop-in');
    expect(readFileSync(`/proc/${wrapped}/cmdline`, 'utf8')).toBe('/usr/bin/etcd\0');
    await ssh('m3', sh`rm -r ${dropIns} && systemctl daemon-reload`);
  });

  it('a missing EnvironmentFile fails the start: systemctl says so and the unit is failed', async () => {
    const conf = m3.confFile!;
    const r = await ssh('m3', sh`mv ${conf} ${conf}.away && systemctl restart etcd`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Job for etcd\.service failed because of unavailable resources or another system error\./);
    expect(await ssh('m3', 'systemctl is-active etcd')).toMatchObject({ code: 3, stdout: 'failed\n' });
    expect(units.pid()).toBeNull();

    expect(await ssh('m3', sh`mv ${conf}.away ${conf} && systemctl start etcd`)).toMatchObject({ code: 0, stderr: '' });
    await waitFor('m3 healthy with its etcd.conf back', () => healthy(m3), 20_000, 200);
  });

  it("the lab's faults on a systemd host: stopMember and killMember leave the unit down (inactive, failed) until startMember", async () => {
    await lab.stopMember('m3');
    expect(await ssh('m3', 'systemctl is-active etcd')).toMatchObject({ code: 3, stdout: 'inactive\n' });
    await lab.startMember('m3');
    await waitFor('m3 healthy after stopMember', () => healthy(m3), 20_000, 200);

    await lab.killMember('m3');
    const killedAt = Date.now();
    expect(await ssh('m3', 'systemctl show etcd -p ActiveState -p SubState')).toMatchObject({ code: 0, stdout: 'ActiveState=failed\nSubState=failed\n' });
    const startedAt = Date.now();
    // Nothing restarted it in between: Restart=always does not apply to a unit wanted stopped.
    expect(units.downThroughout('etcd', killedAt, startedAt)).toBe(true);
    await lab.startMember('m3');
    await waitFor('m3 healthy after killMember', () => healthy(m3), 20_000, 200);
  });

  it('corruptMember: etcd crash-loops under Restart=always, a new PID each time, never answering', async () => {
    const from = Date.now();
    await lab.corruptMember('m3');
    let answered = false;
    await waitFor(
      'three failed starts of m3',
      async () => {
        if (await healthy(m3)) answered = true;
        return new Set(units.history('etcd').filter((t) => t.at >= from && t.pid !== null).map((t) => t.pid)).size >= 3;
      },
      20_000,
      200,
    );
    expect(answered).toBe(false);
    expect(units.history('etcd').some((t) => t.at >= from && t.state === 'activating' && t.sub === 'auto-restart')).toBe(true);
    expect(readFileSync(join(m3.logDir, 'etcd.log'), 'utf8')).toMatch(/Scheduled restart job, restart counter is at 2\./);
    expect((await lab.etcdctl(['endpoint', 'health'], [lab.host('m1').clientUrl, lab.host('m2').clientUrl])).code).toBe(0);
  });
});
