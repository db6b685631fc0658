import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLabStack } from './stack.js';

/** `npm run lab`: the lab by hand, with what to set to point a bot at it. */
async function main(): Promise<void> {
  const root = process.env.LAB_ROOT ?? join(tmpdir(), 'etcd-medic-lab');
  const subnet = Number(process.env.LAB_SUBNET ?? 21);
  const stack = await startLabStack(root, subnet, (s) => console.log(`[lab] ${s}`));
  const exports = Object.entries({ ...stack.env, PORT: '3001' })
    .map(([k, v]) => `export ${k}=${v}`)
    .join('\n');
  console.log(`
The lab is up: three TLS etcd members (static pods under ${join(root, 'lab/hosts')}), an sshd per host,
Redis at ${stack.redis.url}, and a fake Slack Web API at ${stack.slack.apiUrl}.

Point the bot at it (in another shell):
${exports}
npm start

Fault injection by hand, as an operator would:
  mv ${stack.lab.host('m3').manifestsDir}/etcd.yaml ${stack.lab.host('m3').parkedDir}/   # stop m3
  mv ${stack.lab.host('m3').parkedDir}/etcd.yaml ${stack.lab.host('m3').manifestsDir}/   # start it again

etcdctl against it:
  ETCDCTL_API=3 etcdctl --endpoints=${stack.lab.endpoints.join(',')} --cacert=${stack.lab.tls.ca} --cert=${stack.lab.tls.cert} --key=${stack.lab.tls.key} endpoint status -w table

Ctrl-C stops everything.`);
  const stop = () => void stack.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
