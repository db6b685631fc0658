import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterConfig } from '../src/config/schema.js';
import { streamSnapshot } from '../src/backup/take.js';
import { openEndpoint } from '../src/etcd/pool.js';
import { run } from '../src/lab/proc.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import { waitForGate, waitForRunStatus } from '../src/lab/slack-view.js';
import type { LabStack } from '../src/lab/stack.js';
import { printStepTimes } from './replace.js';

/** Snapshot of the leader through the API (what the bot does) vs `etcdctl snapshot save`, same member, same run. */
export async function snapshotRuns(stack: LabStack, cluster: ClusterConfig, n: number): Promise<{ bot: number[]; etcdctl: number[]; bytes: number }> {
  const lab = stack.lab;
  const endpoint = lab.hosts[0]!.clientUrl;
  const client = openEndpoint(cluster, endpoint, 10_000);
  const bot: number[] = [];
  const etcdctl: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const f1 = join(lab.opts.root, `bench-api-${i}.db`);
    let t0 = performance.now();
    bytes = (await streamSnapshot(client, f1)).bytes;
    bot.push(performance.now() - t0);
    rmSync(f1, { force: true });
    const f2 = join(lab.opts.root, `bench-etcdctl-${i}.db`);
    t0 = performance.now();
    await lab.etcdctl(['snapshot', 'save', f2], [endpoint]);
    etcdctl.push(performance.now() - t0);
    bytes = Math.max(bytes, statSync(f2).size);
    rmSync(f2, { force: true });
  }
  client.close();
  return { bot, etcdctl, bytes };
}

/** The fault for restore-quorum: m2 and m3 die and their data dirs are gone. */
export async function loseMajority(stack: LabStack): Promise<void> {
  for (const name of ['m2', 'm3']) {
    await stack.lab.killMember(name);
    const h = stack.lab.host(name);
    renameSync(h.dataDir, `${h.dataDir}.lost-${Date.now()}`);
    // The lab's parked manifest stays out of the kubelet's view; a rebuilt host has none.
    rmSync(join(h.parkedDir, 'etcd.yaml'), { force: true });
  }
}

/** restore-quorum through the bot: command, plan, two approvals by a second person, until DONE. */
export async function botRestoreQuorum(stack: LabStack, eventsUrl: string): Promise<number> {
  const t0 = performance.now();
  const since = stack.slack.lastSeq;
  const channel = 'CBENCHQUORUM';
  await postSigned(eventsUrl, stack.secret, slashCommandBody({ text: 'restore-quorum', userId: 'UALICE', channelId: channel, responseUrl: stack.slack.responseUrl('bench-rq') }));
  const plan = await stack.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === channel && /^(Restore quorum|.*refused)/.test(String(r.body.text)), 60_000, since);
  if (!String(plan.body.text).startsWith('Restore quorum')) throw new Error(`restore-quorum was refused: ${String(plan.body.text)}`);
  if (process.env.BENCH_VERBOSE) console.error(`  plan posted ${(performance.now() - t0).toFixed(0)} ms after the command`);
  for (const step of [1, 2]) {
    const b = await waitForGate(stack.slack, plan.ts!, step);
    await postSigned(eventsUrl, stack.secret, blockActionsBody({ userId: 'UBOB', channelId: channel, messageTs: plan.ts!, actionId: 'medic_approve', blockId: b.blockId, value: b.approve, responseUrl: stack.slack.responseUrl(`bench-rq-${step}`) }));
  }
  await waitForRunStatus(stack.slack, plan.ts!, 'DONE', 600_000);
  if (process.env.BENCH_VERBOSE) printStepTimes(stack, plan.ts!);
  return performance.now() - t0;
}

/**
 * The same recovery as an operator's script: m1 restarted with
 * --force-new-cluster and again without it, then m2 and m3 added back as
 * learners one at a time (manifest copied from m1 and edited), started, promoted.
 */
export async function scriptRestoreQuorum(stack: LabStack): Promise<number> {
  const lab = stack.lab;
  const [m1, ...rest] = lab.hosts;
  const tls = `--cacert=${lab.tls.ca} --cert=${lab.tls.cert} --key=${lab.tls.key}`;
  const known = join(lab.opts.root, 'bench_known_hosts_rq');
  writeFileSync(known, lab.hosts.map((h) => `[${h.ip}]:2222 ${readFileSync(`${h.ssh.hostKey}.pub`, 'utf8')}`).join(''));
  const ssh = (ip: string) => `ssh -i ${lab.sshKey} -p 2222 -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${known} -o BatchMode=yes root@${ip}`;
  const m1Manifest = `${m1!.manifestsDir}/etcd.yaml`;
  const grow = rest
    .map(
      (h) => `
mark ${h.name}: start
until $E member add ${h.name} --peer-urls=${h.peerUrl} --learner >/dev/null 2>&1; do sleep 0.2; done
mark ${h.name}: learner added
IC=$($E member list | awk -F', ' '{n=$3; if (n=="") n="${h.name}"; printf "%s%s=%s", sep, n, $4; sep=","}')
${ssh(m1!.ip)} cat ${m1Manifest} | sed -e 's#${m1!.dataDir}#${h.dataDir}#g; s#${m1!.pkiDir}#${h.pkiDir}#g; s#${m1!.ip}#${h.ip}#g; s#--name=${m1!.name}#--name=${h.name}#; s#--initial-cluster=.*#--initial-cluster='"$IC"'#; s#--initial-cluster-state=.*#--initial-cluster-state=existing#' | ${ssh(h.ip)} 'cat > ${h.manifestsDir}/etcd.yaml'
mark ${h.name}: manifest written
until etcdctl ${tls} --endpoints=${h.clientUrl} endpoint status >/dev/null 2>&1; do sleep 0.2; done
mark ${h.name}: answers
NEW=$($E member list | awk -F', ' '$3=="${h.name}"{print $1}')
until $E member promote $NEW >/dev/null 2>&1; do sleep 0.2; done
mark ${h.name}: promoted`,
    )
    .join('\n');
  const script = `
set -eu
export ETCDCTL_API=3
T0=$(date +%s%N)
# With BENCH_VERBOSE: when each part ended, on stderr (the bench prints it).
mark() { if [ -n "\${BENCH_VERBOSE:-}" ]; then echo "  +$(( ($(date +%s%N) - T0) / 1000000 )) ms  script: $*" >&2; fi; }
E="etcdctl ${tls} --endpoints=${m1!.clientUrl}"
${ssh(m1!.ip)} 'cp ${m1Manifest} /tmp/etcd.yaml.orig && sed -e "s#^\\(\\s*\\)- --name=\\(.*\\)#\\1- --name=\\2\\n\\1- --force-new-cluster#" /tmp/etcd.yaml.orig > ${m1Manifest}'
mark m1: manifest with --force-new-cluster written
until [ "$($E member list 2>/dev/null | wc -l)" = 1 ]; do sleep 0.2; done
mark m1: one member
${ssh(m1!.ip)} 'cp /tmp/etcd.yaml.orig ${m1Manifest}'
sleep 1
until $E endpoint health >/dev/null 2>&1; do sleep 0.2; done
mark m1: healthy without the flag
${grow}
until etcdctl ${tls} --endpoints=${lab.endpoints.join(',')} endpoint health >/dev/null 2>&1; do sleep 0.2; done
mark all healthy
`;
  const t0 = performance.now();
  const { stderr } = await run('bash', ['-c', script], { timeoutMs: 600_000 });
  if (process.env.BENCH_VERBOSE) console.error(stderr.trimEnd());
  return performance.now() - t0;
}
