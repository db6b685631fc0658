import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterConfig } from '../src/config/schema.js';
import { openEndpoint } from '../src/etcd/pool.js';
import type { LabStack } from '../src/lab/stack.js';
import { run } from '../src/lab/proc.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import { waitForGate, waitForRunStatus } from '../src/lab/slack-view.js';

/** Fills the cluster with `mb` megabytes in 5 KB values, so that catching up has something to copy. */
export async function fillDb(cluster: ClusterConfig, mb: number): Promise<number> {
  const client = openEndpoint(cluster, cluster.etcd.endpoints[0]!, 10_000);
  const value = 'x'.repeat(5 * 1024);
  const n = Math.ceil((mb * 1024) / 5);
  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => client.put(`/bench/fill/${i + j}`).value(value)));
  }
  client.close();
  return n;
}

/** The whole replace through the bot: command, plan, two approvals by a second person, until DONE. */
export async function botReplace(stack: LabStack, eventsUrl: string, member: string): Promise<number> {
  const t0 = performance.now();
  const since = stack.slack.lastSeq;
  const channel = 'CBENCHREPLACE';
  const cmd = slashCommandBody({ text: `replace ${member}`, userId: 'UALICE', channelId: channel, responseUrl: stack.slack.responseUrl('bench-replace') });
  await postSigned(eventsUrl, stack.secret, cmd);
  const plan = await stack.slack.waitFor((r) => r.method === 'chat.postMessage' && r.body.channel === channel && /^Replace/.test(String(r.body.text)), 60_000, since);
  for (const step of [1, 2]) {
    const b = await waitForGate(stack.slack, plan.ts!, step);
    const click = blockActionsBody({ userId: 'UBOB', channelId: channel, messageTs: plan.ts!, actionId: 'medic_approve', blockId: b.blockId, value: b.approve, responseUrl: stack.slack.responseUrl(`bench-click-${step}`) });
    await postSigned(eventsUrl, stack.secret, click);
  }
  await waitForRunStatus(stack.slack, plan.ts!, 'DONE', 300_000);
  if (process.env.BENCH_VERBOSE) printStepTimes(stack, plan.ts!);
  return performance.now() - t0;
}

/** What an operator's script starts from: etcdctl's TLS flags, the other members' endpoints, and ssh to the member's host with its key pinned in known_hosts. */
export function operatorTools(stack: LabStack, member: string): { tls: string; others: string; ssh: string } {
  const lab = stack.lab;
  const h = lab.host(member);
  const others = lab.hosts.filter((x) => x.name !== member).map((x) => x.clientUrl).join(',');
  const knownHosts = join(lab.opts.root, 'bench_known_hosts');
  writeFileSync(knownHosts, `[${h.ip}]:2222 ${readFileSync(`${h.ssh.hostKey}.pub`, 'utf8')}`);
  const tls = `--cacert=${lab.tls.ca} --cert=${lab.tls.cert} --key=${lab.tls.key}`;
  const ssh = `ssh -i ${lab.sshKey} -p 2222 -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHosts} -o BatchMode=yes root@${h.ip}`;
  return { tls, others, ssh };
}

/** The same steps as an operator's script: etcdctl and ssh (host key pinned in known_hosts), no bot. */
export async function scriptReplace(stack: LabStack, member: string): Promise<number> {
  const lab = stack.lab;
  const h = lab.host(member);
  const { tls, others, ssh } = operatorTools(stack, member);
  const manifest = `${h.manifestsDir}/etcd.yaml`;
  const aside = `${h.root}/etc/kubernetes/bench-aside.yaml`;
  const script = `
set -eu
export ETCDCTL_API=3
E="etcdctl ${tls} --endpoints=${others}"
$E snapshot save ${lab.opts.root}/bench-snapshot.db >/dev/null 2>&1 || etcdctl ${tls} --endpoints=${lab.hosts[0]!.clientUrl} snapshot save ${lab.opts.root}/bench-snapshot.db >/dev/null
ID=$($E member list | awk -F', ' '$3=="${member}"{print $1}')
until $E member remove $ID >/dev/null 2>&1; do sleep 0.2; done
${ssh} 'mv ${manifest} ${aside}; while (exec 3<>/dev/tcp/${h.ip}/2379) 2>/dev/null; do sleep 0.2; done; mv ${h.dataDir} ${h.dataDir}.bench-$(date +%s%N)'
until $E member add ${member} --peer-urls=${h.peerUrl} --learner >/dev/null 2>&1; do sleep 0.2; done
${ssh} 'sed -e s/--initial-cluster-state=new/--initial-cluster-state=existing/ ${aside} > ${manifest}'
until etcdctl ${tls} --endpoints=${h.clientUrl} endpoint status >/dev/null 2>&1; do sleep 0.2; done
NEW=$($E member list | awk -F', ' '$3=="${member}"{print $1}')
until $E member promote $NEW >/dev/null 2>&1; do sleep 0.2; done
until etcdctl ${tls} --endpoints=${lab.endpoints.join(',')} endpoint health >/dev/null 2>&1; do sleep 0.2; done
`;
  const t0 = performance.now();
  await run('bash', ['-c', script], { timeoutMs: 300_000 });
  return performance.now() - t0;
}

/** With BENCH_VERBOSE set: when each step's outcome reached the thread, from the plan's post. */
export function printStepTimes(stack: LabStack, ts: string): void {
  const start = stack.slack.messages((r) => r.ts === ts)[0]!.at;
  for (const r of stack.slack.messages((x) => x.body.thread_ts === ts && /^:(white_check_mark|fast_forward):/.test(String(x.body.text)))) {
    console.error(`  +${String(r.at - start).padStart(6)} ms  ${String(r.body.text).split('\n')[0]!.slice(0, 100)}`);
  }
}
