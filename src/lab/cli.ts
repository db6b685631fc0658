import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLabStack } from './stack.js';

/** `npm run lab`: the lab by hand, with what to set to point a bot at it. */
async function main(): Promise<void> {
  const root = process.env.LAB_ROOT ?? join(tmpdir(), 'etcd-medic-lab');
  const subnet = Number(process.env.LAB_SUBNET ?? 21);
  // LAB_PLATFORM=systemd: OpenShift 3 style masters (etcd a systemd unit reading etcd.conf) instead of kubeadm ones;
  // LAB_PLATFORM=openshift4: OpenShift 4.1–4.3 style masters (etcd-member.yaml static pods).
  const platform = process.env.LAB_PLATFORM === 'systemd' || process.env.LAB_PLATFORM === 'openshift4' ? process.env.LAB_PLATFORM : 'kubeadm';
  const stack = await startLabStack(root, subnet, (s) => console.log(`[lab] ${s}`), { kube: platform === 'kubeadm', platform });
  const m3 = stack.lab.host('m3');
  const exports = Object.entries({ ...stack.env, PORT: '3001' })
    .map(([k, v]) => `export ${k}=${v}`)
    .join('\n');
  const stop = () => void stack.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (platform === 'openshift4') {
    console.log(`
The lab is up: three TLS etcd members on OpenShift 4.1–4.3 style masters (static pods under
${join(root, 'lab/hosts')}: etcd-member.yaml, whose /bin/sh -c script ends in exec etcd, beside kube-apiserver-pod.yaml,
kube-controller-manager-pod.yaml and kube-scheduler-pod.yaml), an sshd per host, Redis at ${stack.redis.url},
and a fake Slack Web API at ${stack.slack.apiUrl}.

Point the bot at it (in another shell):
${exports}
npm start

Fault injection by hand, as an operator would:
  mv ${m3.manifestsDir}/etcd-member.yaml ${m3.parkedDir}/   # stop m3
  mv ${m3.parkedDir}/etcd-member.yaml ${m3.manifestsDir}/   # start it again
  cat ${m3.manifestsDir}/etcd-member.yaml   # the flags the bot reads and writes (script line and env)

etcdctl against it:
  ETCDCTL_API=3 etcdctl --endpoints=${stack.lab.endpoints.join(',')} --cacert=${stack.lab.tls.ca} --cert=${stack.lab.tls.cert} --key=${stack.lab.tls.key} endpoint status -w table

Ctrl-C stops everything.`);
    return;
  }
  if (platform === 'systemd') {
    console.log(`
The lab is up: three TLS etcd members on OpenShift 3 style masters (etcd.service reading etc/etcd/etcd.conf under
${join(root, 'lab/hosts')}, run by the lab's systemd stand-in), an sshd per host, Redis at ${stack.redis.url},
and a fake Slack Web API at ${stack.slack.apiUrl}.

Point the bot at it (in another shell):
${exports}
npm start

Fault injection by hand, as an operator would (the lab's systemctl is ${m3.binDir}/systemctl):
  ${m3.binDir}/systemctl stop etcd    # stop m3 (start it again the same way)
  cat ${m3.masterConfig}   # what /etcd drift compares with the member list

etcdctl against it:
  ETCDCTL_API=3 etcdctl --endpoints=${stack.lab.endpoints.join(',')} --cacert=${stack.lab.tls.ca} --cert=${stack.lab.tls.cert} --key=${stack.lab.tls.key} endpoint status -w table

Ctrl-C stops everything.`);
    return;
  }
  const kube = stack.lab.kube!;
  console.log(`
The lab is up: three TLS etcd members (static pods under ${join(root, 'lab/hosts')}), an sshd per host,
a Kubernetes API stand-in (kube-apiserver on each host's :6443 behind ${kube.server}, a kubelet on each :10250),
Redis at ${stack.redis.url}, and a fake Slack Web API at ${stack.slack.apiUrl}.

Point the bot at it (in another shell):
${exports}
npm start

Fault injection by hand, as an operator would:
  mv ${m3.manifestsDir}/etcd.yaml ${m3.parkedDir}/   # stop m3
  mv ${m3.parkedDir}/etcd.yaml ${m3.manifestsDir}/   # start it again
  mv ${m3.manifestsDir}/kube-apiserver.yaml ${m3.parkedDir}/   # stop m3's kube-apiserver (and back the same way)
(a kubelet that re-bootstraps, or a short-lived serving cert, is played from code: lab.kube.rebootstrapKubelet and
 setServingCert; the playground, \`npm start\` without Slack settings, has buttons for the first.)

kubectl against it:
  kubectl --kubeconfig ${kube.kubeconfig} get nodes,csr

etcdctl against it:
  ETCDCTL_API=3 etcdctl --endpoints=${stack.lab.endpoints.join(',')} --cacert=${stack.lab.tls.ca} --cert=${stack.lab.tls.cert} --key=${stack.lab.tls.key} endpoint status -w table

Ctrl-C stops everything.`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
