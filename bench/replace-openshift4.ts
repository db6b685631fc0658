import { join } from 'node:path';
import { run } from '../src/lab/proc.js';
import type { LabStack } from '../src/lab/stack.js';
import { operatorTools } from './replace.js';
import { profileReplaceBench } from './replace-profile.js';

const ETCD_MEMBER = 'etcd-member.yaml';

/**
 * The replace an OpenShift 4.1–4.3 runbook has an operator type on a master
 * where etcd is the static pod etcd-member.yaml: etcdctl from outside, ssh to
 * the host, the manifest moved out of the kubelet's directory to stop etcd,
 * then written back with sed from that copy: the state on the script's
 * `exec etcd` line set to existing, ETCD_INITIAL_CLUSTER in the container's
 * env set to what `member add` printed. No bot.
 */
export async function scriptReplaceOpenshift4(stack: LabStack, member: string): Promise<number> {
  const lab = stack.lab;
  const h = lab.host(member);
  const { tls, others, ssh } = operatorTools(stack, member);
  const manifest = join(h.manifestsDir, ETCD_MEMBER);
  const aside = join(h.root, 'etc/kubernetes/etcd-member.yaml.bench-aside');
  // etcdctl 3.4 takes a snapshot from exactly one endpoint: the first member that stays.
  const seed = others.split(',')[0]!;
  const script = `
set -eu
export ETCDCTL_API=3
E="etcdctl ${tls} --endpoints=${others}"
etcdctl ${tls} --endpoints=${seed} snapshot save ${lab.opts.root}/bench-snapshot.db >/dev/null
ID=$($E member list | awk -F', ' '$3=="${member}"{print $1}')
until $E member remove $ID >/dev/null 2>&1; do sleep 0.2; done
${ssh} 'mv ${manifest} ${aside}; while (exec 3<>/dev/tcp/${h.ip}/2379) 2>/dev/null; do sleep 0.2; done; mv ${h.dataDir} ${h.dataDir}.bench-$(date +%s%N)'
until ADD=$($E member add ${member} --peer-urls=${h.peerUrl} --learner 2>/dev/null); do sleep 0.2; done
IC=$(printf '%s\\n' "$ADD" | sed -n 's/^ETCD_INITIAL_CLUSTER="\\(.*\\)"$/\\1/p')
[ -n "$IC" ] || { echo "no ETCD_INITIAL_CLUSTER in: $ADD" >&2; exit 1; }
${ssh} "sed -e 's|--initial-cluster-state=[a-z]*|--initial-cluster-state=existing|' -e '/- name: ETCD_INITIAL_CLUSTER\\$/{n;s|value: .*|value: \\"$IC\\"|;}' ${aside} > ${manifest} && grep -qF -- '$IC' ${manifest}"
until etcdctl ${tls} --endpoints=${h.clientUrl} endpoint status >/dev/null 2>&1; do sleep 0.2; done
NEW=$($E member list | awk -F', ' '$3=="${member}"{print $1}')
until $E member promote $NEW >/dev/null 2>&1; do sleep 0.2; done
until etcdctl ${tls} --endpoints=${lab.endpoints.join(',')} endpoint health >/dev/null 2>&1; do sleep 0.2; done
`;
  const t0 = performance.now();
  await run('bash', ['-c', script], { timeoutMs: 300_000 });
  return performance.now() - t0;
}

/** The replace on a openshift4 lab of its own, the bot against scriptReplaceOpenshift4 (see profileReplaceBench). */
export const openshift4ReplaceBench = (root: string, subnet: number, o: { runs: number; fillMb: number }, log: (s: string) => void) => profileReplaceBench('openshift4', scriptReplaceOpenshift4, root, subnet, o, log);
