import { dirname, join } from 'node:path';
import { run } from '../src/lab/proc.js';
import type { LabStack } from '../src/lab/stack.js';
import { operatorTools } from './replace.js';
import { profileReplaceBench } from './replace-profile.js';

/**
 * The replace an OpenShift 3 runbook has an operator type on a master where
 * etcd is the `etcd` systemd unit reading /etc/etcd/etcd.conf: etcdctl from
 * outside, ssh and systemctl on the host, etcd.conf rewritten with sed from
 * the copy moved aside. No bot.
 */
export async function scriptReplaceSystemd(stack: LabStack, member: string): Promise<number> {
  const lab = stack.lab;
  const h = lab.host(member);
  const { tls, others, ssh } = operatorTools(stack, member);
  const conf = h.confFile!;
  const aside = join(dirname(conf), 'etcd.conf.bench-aside');
  // etcdctl 3.4 takes a snapshot from exactly one endpoint: the first member that stays.
  const seed = others.split(',')[0]!;
  const script = `
set -eu
export ETCDCTL_API=3
E="etcdctl ${tls} --endpoints=${others}"
etcdctl ${tls} --endpoints=${seed} snapshot save ${lab.opts.root}/bench-snapshot.db >/dev/null
ID=$($E member list | awk -F', ' '$3=="${member}"{print $1}')
until $E member remove $ID >/dev/null 2>&1; do sleep 0.2; done
${ssh} 'mv ${conf} ${aside}; systemctl disable etcd; systemctl stop etcd; mv ${h.dataDir} ${h.dataDir}.bench-$(date +%s%N)'
until ADD=$($E member add ${member} --peer-urls=${h.peerUrl} --learner 2>/dev/null); do sleep 0.2; done
IC=$(printf '%s\\n' "$ADD" | sed -n 's/^ETCD_INITIAL_CLUSTER="\\(.*\\)"$/\\1/p')
[ -n "$IC" ] || { echo "no ETCD_INITIAL_CLUSTER in: $ADD" >&2; exit 1; }
${ssh} "sed -e 's|^ETCD_INITIAL_CLUSTER=.*|ETCD_INITIAL_CLUSTER=$IC|' -e 's|^ETCD_INITIAL_CLUSTER_STATE=.*|ETCD_INITIAL_CLUSTER_STATE=existing|' ${aside} > ${conf} && systemctl enable etcd && systemctl start etcd"
until etcdctl ${tls} --endpoints=${h.clientUrl} endpoint status >/dev/null 2>&1; do sleep 0.2; done
NEW=$($E member list | awk -F', ' '$3=="${member}"{print $1}')
until $E member promote $NEW >/dev/null 2>&1; do sleep 0.2; done
until etcdctl ${tls} --endpoints=${lab.endpoints.join(',')} endpoint health >/dev/null 2>&1; do sleep 0.2; done
`;
  const t0 = performance.now();
  await run('bash', ['-c', script], { timeoutMs: 300_000 });
  return performance.now() - t0;
}

/** The replace on a systemd lab of its own, the bot against scriptReplaceSystemd (see profileReplaceBench). */
export const systemdReplaceBench = (root: string, subnet: number, o: { runs: number; fillMb: number }, log: (s: string) => void) => profileReplaceBench('systemd', scriptReplaceSystemd, root, subnet, o, log);
