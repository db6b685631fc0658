import { run, type RunResult } from './proc.js';

/** A lab's etcd client certificate files. */
export interface LabTls {
  ca: string;
  cert: string;
  key: string;
}

/** etcdctl (v3 API) with the lab's client certificate, against `endpoints`: how tests read etcd without the code under test. */
export function labEtcdctl(tls: LabTls, endpoints: string[], args: string[], allowFail = false): Promise<RunResult> {
  return run(
    'etcdctl',
    [`--endpoints=${endpoints.join(',')}`, `--cacert=${tls.ca}`, `--cert=${tls.cert}`, `--key=${tls.key}`, '--command-timeout=5s', '--dial-timeout=2s', ...args],
    { env: { ...process.env, ETCDCTL_API: '3' }, allowFail, timeoutMs: 30_000 },
  );
}

/** `etcdctl member list` as it prints it (`id, status, name, peer, client, learner`, IDs in hex), a row a member. */
export function parseMemberList(stdout: string): { id: string; status: string; name: string; peer: string; client: string; learner: boolean }[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [id, status, name, peer, client, learner] = line.split(', ');
      return { id: id!, status: status!, name: name!, peer: peer!, client: client!, learner: learner === 'true' };
    });
}
