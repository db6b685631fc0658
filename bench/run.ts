import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { postSigned, slashCommandBody } from '../src/lab/signed-requests.js';
import { isStatusVerdictIn } from '../src/lab/slack-view.js';
import { startLabStack } from '../src/lab/stack.js';
import { createLogger } from '../src/log.js';
import { startMedic } from '../src/runtime.js';
import { botRestoreQuorum, loseMajority, scriptRestoreQuorum, snapshotRuns } from './quorum.js';
import { backupMemory, printBackupMemory, type BackupMemory } from './backup-memory.js';
import { botReplace, fillDb, scriptReplace } from './replace.js';
import { systemdReplaceBench } from './replace-systemd.js';
import { openshift4ReplaceBench } from './replace-openshift4.js';
import { statefulsetReplaceBench } from './replace-statefulset.js';
import { printTable, summarize, type Summary } from './stats.js';
import { csrBench } from './csr.js';
import { filePendingCsrs, statusCertCost } from './status-certs.js';
import { statusParts } from './status-parts.js';
import { statusFrozenBench } from './status-frozen.js';
import { printMetricsView } from './metrics-view.js';
import { defragBench } from './defrag.js';
import { startBotProcess } from './bot-process.js';
import { burstAgainstBareServer, burstAgainstBot } from './burst.js';

/**
 * `npm run bench`: how fast the bot answers `/etcd status`, beside what an
 * operator gets from `etcdctl endpoint status` on the same lab in the same run.
 * Numbers are printed, never asserted: this machine's load varies.
 */
const HEALTHY_RUNS = Number(process.env.BENCH_RUNS ?? 60);
const DEAD_RUNS = Number(process.env.BENCH_DEAD_RUNS ?? 15);
const REPLACE_RUNS = Number(process.env.BENCH_REPLACE_RUNS ?? 2);
const QUORUM_RUNS = Number(process.env.BENCH_QUORUM_RUNS ?? 1);
const SNAPSHOT_RUNS = Number(process.env.BENCH_SNAPSHOT_RUNS ?? 3);
const FILL_MB = Number(process.env.BENCH_FILL_MB ?? 100);
const BURST = Number(process.env.BENCH_BURST ?? 100);
const BURST_ROUNDS = Number(process.env.BENCH_BURST_ROUNDS ?? 3);
const BIG_DB_MB = Number(process.env.BENCH_BIG_DB_MB ?? 1100);
const CSR_ARRIVALS = Number(process.env.BENCH_CSR_ARRIVALS ?? 10);
const CSR_APPROVE_ALL = Number(process.env.BENCH_CSR_APPROVE_ALL ?? 50);
const CSR_ROUNDS = Number(process.env.BENCH_CSR_ROUNDS ?? 3);
const CERT_RUNS = Number(process.env.BENCH_CERT_RUNS ?? 20);
const FROZEN_RUNS = Number(process.env.BENCH_FROZEN_RUNS ?? 5);
/** Pending kubelet CSRs (filed with the bootstrap token, as after a rebuild) for the status row that lists them. */
const PENDING_CSRS = Number(process.env.BENCH_PENDING_CSRS ?? 30);
/**
 * `BENCH_ONLY=backup-memory` runs only the big-database backup case; `BENCH_ONLY=csr` only the CSR cases;
 * `BENCH_ONLY=status` only the status cases; `BENCH_ONLY=replace-systemd` only the replace on systemd masters,
 * `BENCH_ONLY=replace-openshift4` only the replace on OpenShift 4 masters, `BENCH_ONLY=replace-statefulset` only
 * the replace of a kube-etcd replica (GKE on-prem kubeception), `BENCH_ONLY=defrag` only the NOSPACE recovery
 * (`BENCH_DEFRAG_RUNS`, `BENCH_DEFRAG_QUOTA_MB`); `BENCH_ONLY=status-frozen` only the first message
 * and verdict of a status with two members frozen, on a fresh worker each run; `BENCH_ONLY=snapshot` only the
 * snapshot throughput (API stream vs etcdctl) and `BENCH_ONLY=quorum` only restore-quorum against its script,
 * each on a filled database; `BENCH_ONLY=status-parts` only what each part of the status job costs apart
 * (the view, the certificate handshakes by kind, the CSR list and its decoding; `BENCH_PENDING_CSRS` of them pending).
 * `BENCH_SUBNET=N` puts the main lab on 127.0.N.x (default 40).
 */
const ONLY = process.env.BENCH_ONLY;
/** The loopback subnet (127.0.N.x) of the main lab: BENCH_SUBNET keeps two bench runs on one machine apart. */
const SUBNET = Number(process.env.BENCH_SUBNET ?? 40);

/** The CSR cases run on a lab of their own (with the Kubernetes API stand-in), after the others. */
async function csrCases(): Promise<void> {
  const rows = await csrBench(join(tmpdir(), 'etcd-medic-bench-csr'), 92, { arrivals: CSR_ARRIVALS, approveAll: CSR_APPROVE_ALL, rounds: CSR_ROUNDS }, (s) => console.error(`[lab] ${s}`));
  printTable('CSR cases (ms; base = the raw API watch event of the same CSR, or one `kubectl certificate approve` of as many CSRs; ratio = bot median / base median)', rows);
  console.log('The watch posts a wave 2 s after its first CSR, by design (a rebuild files CSRs in bursts). kubectl throttles itself client-side (client-go, about 5 requests/s: "Waited … due to client-side throttling" with -v=6), a GET and a PUT per CSR.');
}

/** The profiles whose replace runs on a lab of its own, each on its own subnet. */
type OwnLabProfile = 'systemd' | 'openshift4' | 'statefulset';
const OWN_LAB: Record<OwnLabProfile, { bench: typeof systemdReplaceBench; subnet: number; note: string }> = {
  systemd: { bench: systemdReplaceBench, subnet: 105, note: 'systemd: etcd.service reading etcd.conf, the script with systemctl and sed over ssh' },
  openshift4: { bench: openshift4ReplaceBench, subnet: 125, note: "openshift4: the etcd-member.yaml static pod, the script moving it aside and sed-ing its script line's state and its env's ETCD_INITIAL_CLUSTER over ssh" },
  statefulset: {
    bench: statefulsetReplaceBench,
    subnet: 128,
    note: 'statefulset: kube-etcd in an admin cluster (the Kubernetes API stand-in), the seed\'s steps by hand with kubectl (PDB, template patch, drain, utility pod, uncordon) and etcdctl (snapshot, remove, learner add, promote); the bot waits on three approvals',
  },
};

/**
 * A replace per profile against the same-lab script: the systemd (OpenShift 3) and openshift4 (4.1–4.3)
 * replaces, each on a lab of its own, one after the other, with the kubeadm row measured earlier in the
 * same run beside them when there is one.
 */
async function replaceProfiles(kubeadm: [string, Summary, Summary] | null, profiles: OwnLabProfile[] = ['systemd', 'openshift4', 'statefulset']): Promise<void> {
  const rows: [string, Summary, Summary][] = kubeadm ? [kubeadm] : [];
  const notes: string[] = [];
  for (const p of profiles) {
    const { bench, subnet, note } = OWN_LAB[p];
    const { row, keys } = await bench(join(tmpdir(), `etcd-medic-bench-${p}`), subnet, { runs: REPLACE_RUNS, fillMb: FILL_MB }, (s) => console.error(`[lab] ${s}`));
    rows.push(row);
    notes.push(`${note}; ${FILL_MB} MB in ${keys} keys.`);
  }
  printTable('A replace per profile (ms; base = an etcdctl/ssh script doing the same steps by hand on the same lab in the same run; ratio = bot median / script median)', rows);
  for (const n of notes) console.log(n);
}

function printBurst(b: { ack: Summary; bare: Summary }): void {
  console.log(
    `\n${BURST} concurrent /etcd status, ${BURST_ROUNDS} bursts, the bot in its own process: ack p50 ${b.ack.median.toFixed(0)} ms, p99 ${b.ack.p99.toFixed(0)} ms` +
      ` (a bare Node HTTP server, same bursts: p50 ${b.bare.median.toFixed(0)} ms, p99 ${b.bare.p99.toFixed(0)} ms; load average ${loadavg()[0]!.toFixed(1)})`,
  );
}

async function main(): Promise<void> {
  if (ONLY === 'csr') return csrCases();
  if (ONLY === 'replace-systemd') return replaceProfiles(null, ['systemd']);
  if (ONLY === 'replace-openshift4') return replaceProfiles(null, ['openshift4']);
  if (ONLY === 'replace-statefulset') return replaceProfiles(null, ['statefulset']);
  if (ONLY === 'defrag') {
    const { row, note } = await defragBench(join(tmpdir(), 'etcd-medic-bench-defrag'), 142, { runs: Number(process.env.BENCH_DEFRAG_RUNS ?? 3), quotaMb: Number(process.env.BENCH_DEFRAG_QUOTA_MB ?? 64) }, (s) => console.error(`[lab] ${s}`));
    printTable('NOSPACE recovery (ms; base = the same steps as etcdctl commands on the same lab in the same run; ratio = bot median / script median)', [row]);
    console.log(note);
    return;
  }
  if (ONLY === 'status-parts') return statusParts(join(tmpdir(), `etcd-medic-bench-parts-${SUBNET}`), SUBNET, { runs: CERT_RUNS, pendingCsrs: PENDING_CSRS }, (s) => console.error(`[lab] ${s}`));
  if (ONLY === 'status-frozen') return statusFrozenBench(join(tmpdir(), 'etcd-medic-bench-frozen'), 148, FROZEN_RUNS, (s) => console.error(`[lab] ${s}`));
  const root = join(tmpdir(), SUBNET === 40 ? 'etcd-medic-bench' : `etcd-medic-bench-${SUBNET}`);
  // With the Kubernetes stand-in: status then reads kube-apiserver and kubelet certificates too, as it does for a cluster with a kubeconfig.
  const stack = await startLabStack(root, SUBNET, (s) => console.error(`[lab] ${s}`), { kube: true });
  // Bot and worker share Redis, the queue prefix and the key that signs approvals, as two deployments of one release do.
  const env = { ...stack.env, QUEUE_PREFIX: 'bench', LOG_LEVEL: 'warn', ETCD_MEDIC_HMAC_KEY: randomBytes(32).toString('hex') };
  const config = loadConfig({ ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' });
  // The worker runs here beside the lab; the bot runs as its own process, as in production, so its acks are timed
  // on an event loop that serves nothing but Slack's requests.
  const medic = await startMedic(config, createLogger('silent'), { bot: false, worker: true });
  const bot = await startBotProcess(env);
  const eventsUrl = bot.eventsUrl;
  const stopAll = async () => {
    await bot.stop();
    await medic.stop();
    await stack.stop();
  };
  const rows: [string, Summary, Summary][] = [];
  let throughput = '';
  const rssBefore = process.memoryUsage().rss;
  const cluster = config.inventory.clusters[0]!;
  let bigBackup: BackupMemory | null = null;

  if (ONLY === 'backup-memory') {
    printBackupMemory(await backupMemory(stack, eventsUrl, cluster, BIG_DB_MB * 1024 ** 2));
    await stopAll();
    return;
  }

  if (ONLY === 'snapshot' || ONLY === 'quorum') {
    const keys = await fillDb(cluster, FILL_MB);
    const only: [string, Summary, Summary][] = [];
    if (ONLY === 'snapshot') {
      const s = await snapshotRuns(stack, cluster, SNAPSHOT_RUNS);
      const smb = s.bytes / 1024 ** 2;
      only.push([`snapshot ${smb.toFixed(0)} MB (API stream)`, summarize(s.bot), summarize(s.etcdctl)]);
      console.log(`snapshot throughput: ${(smb / (summarize(s.bot).median / 1000)).toFixed(0)} MB/s through the API vs ${(smb / (summarize(s.etcdctl).median / 1000)).toFixed(0)} MB/s with etcdctl snapshot save`);
    } else {
      const bq: number[] = [];
      const sq: number[] = [];
      for (let i = 0; i < QUORUM_RUNS; i++) {
        await loseMajority(stack);
        bq.push(await botRestoreQuorum(stack, eventsUrl));
        await stack.lab.waitHealthy();
        await loseMajority(stack);
        sq.push(await scriptRestoreQuorum(stack));
        await stack.lab.waitHealthy();
      }
      only.push([`restore-quorum (${FILL_MB} MB)`, summarize(bq), summarize(sq)]);
    }
    printTable(`etcd-medic bench, ${ONLY} only (ms; base = ${ONLY === 'snapshot' ? '`etcdctl snapshot save` on the same member' : 'an etcdctl/ssh script doing the same steps'}; ${FILL_MB} MB in ${keys} keys; ratio = bot median / base median)`, only);
    await printMetricsView([bot.port, medic.opsPort!]);
    await stopAll();
    return;
  }

  // One request at a time, each in its own channel so its answer is told apart.
  async function botRuns(n: number, label: string): Promise<{ ack: Summary; done: Summary }> {
    const acks: number[] = [];
    const dones: number[] = [];
    for (let i = 0; i < n + 2; i++) {
      const channel = `CB${label.toUpperCase()}${i}`;
      const since = stack.slack.lastSeq;
      const t0 = performance.now();
      const body = slashCommandBody({ text: 'status', userId: 'UBENCH', channelId: channel, responseUrl: stack.slack.responseUrl(`b${i}`) });
      const res = await postSigned(eventsUrl, stack.secret, body);
      if (res.status !== 200) throw new Error(`ack ${res.status}`);
      await stack.slack.waitFor(isStatusVerdictIn(channel), 30_000, since);
      if (i >= 2) {
        // the first two warm up connections and JIT
        acks.push(res.ms);
        dones.push(performance.now() - t0);
      }
    }
    return { ack: summarize(acks), done: summarize(dones) };
  }

  async function etcdctlRuns(n: number): Promise<Summary> {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await stack.lab.etcdctl(['endpoint', 'status', '--command-timeout=2s', '--dial-timeout=2s'], stack.lab.endpoints, true);
      times.push(performance.now() - t0);
    }
    return summarize(times);
  }

  // 100 people in 10 incident channels type /etcd status at the same moment, from a process of their own (Slack
  // is remote: the lab and the worker here must not delay the reading of the acks). Interleaved with the same
  // burst against a bare Node HTTP server, the floor any ack stands on while this machine is as busy as it is.
  async function burst(n: number): Promise<{ ack: Summary; done: Summary; bare: Summary }> {
    const acks: number[] = [];
    const dones: number[] = [];
    const bare: number[] = [];
    for (let round = 0; round < BURST_ROUNDS; round++) {
      bare.push(...(await burstAgainstBareServer(n)));
      const r = await burstAgainstBot(stack.slack, eventsUrl, stack.secret, n, `R${round}`);
      acks.push(...r.acks);
      dones.push(...r.done);
    }
    return { ack: summarize(acks), done: summarize(dones), bare: summarize(bare) };
  }

  const healthyBaseline = await etcdctlRuns(HEALTHY_RUNS);
  const healthy = await botRuns(HEALTHY_RUNS, 'h');
  rows.push(['status, 3 healthy: completion', healthy.done, healthyBaseline]);
  rows.push(['status, 3 healthy: ack', healthy.ack, healthyBaseline]);

  // The status job with its certificate check (base: without it), interleaved in the same run: 3 healthy,
  // then one member dead (killed: its ports refuse), then one member hung (SIGSTOP: its ports accept and say nothing).
  const certRow = async (what: string, label: string) => {
    const c = await statusCertCost(stack, config.inventory, cluster, CERT_RUNS, label);
    rows.push([`status job, ${what}: certs vs none`, c.withCerts, c.without]);
  };
  await certRow('3 healthy', 'h');
  await stack.lab.killMember('m3');
  await certRow('m3 dead', 'd1');
  await stack.lab.startMember('m3');
  await stack.lab.waitHealthy();
  const m3pid = stack.lab.host('m3').supervisor.pid()!;
  process.kill(m3pid, 'SIGSTOP');
  try {
    await certRow('m3 hung', 'f1');
  } finally {
    process.kill(m3pid, 'SIGCONT');
  }
  await stack.lab.waitHealthy();
  // After a rebuild: kubelet CSRs wait for approval, each naming its master only inside its request.
  const unfile = await filePendingCsrs(stack, PENDING_CSRS);
  try {
    await certRow(`${PENDING_CSRS} pending CSRs`, 'p');
  } finally {
    await unfile();
  }

  const concurrent = await burst(BURST);
  rows.push([`${BURST} concurrent status: ack`, concurrent.ack, concurrent.bare]);
  rows.push([`${BURST} concurrent status: completion`, concurrent.done, healthyBaseline]);

  if (ONLY === 'status') {
    await stack.lab.killMember('m2');
    await stack.lab.killMember('m3');
    const deadBaseline = await etcdctlRuns(DEAD_RUNS);
    const dead = await botRuns(DEAD_RUNS, 'd');
    rows.push(['status, 2 of 3 dead: completion', dead.done, deadBaseline]);
    await certRow('2 of 3 dead', 'd2');
    printTable('etcd-medic bench, status only (ms; base = `etcdctl endpoint status`, the same burst against a bare Node HTTP server, or the status job without its certificate check; ratio = median / base median)', rows);
    printBurst(concurrent);
    await printMetricsView([bot.port, medic.opsPort!]);
    await stopAll();
    return;
  }

  // Replace a member whose disk broke: the bot (with two approvals) against an operator's script.
  const keys = await fillDb(cluster, FILL_MB);


  // Snapshot throughput: the API stream the bot uses vs etcdctl snapshot save, same member.
  const snaps = await snapshotRuns(stack, cluster, SNAPSHOT_RUNS);
  const mb = snaps.bytes / 1024 ** 2;
  rows.push([`snapshot ${mb.toFixed(0)} MB (API stream)`, summarize(snaps.bot), summarize(snaps.etcdctl)]);
  throughput = `snapshot throughput: ${(mb / (summarize(snaps.bot).median / 1000)).toFixed(0)} MB/s through the API vs ${(mb / (summarize(snaps.etcdctl).median / 1000)).toFixed(0)} MB/s with etcdctl snapshot save`;
  const botTimes: number[] = [];
  const scriptTimes: number[] = [];
  for (let i = 0; i < REPLACE_RUNS; i++) {
    await stack.lab.corruptMember('m3');
    botTimes.push(await botReplace(stack, eventsUrl, 'm3'));
    await stack.lab.waitHealthy();
    await stack.lab.corruptMember('m3');
    scriptTimes.push(await scriptReplace(stack, 'm3'));
    await stack.lab.waitHealthy();
  }
  const kubeadmReplace: [string, Summary, Summary] = [`replace m3 (${FILL_MB} MB, ${keys} keys)`, summarize(botTimes), summarize(scriptTimes)];
  rows.push(kubeadmReplace);

  // Majority lost (m2, m3 dead, data gone): restore-quorum by the bot vs an etcdctl/ssh script.
  const rqBot: number[] = [];
  const rqScript: number[] = [];
  for (let i = 0; i < QUORUM_RUNS; i++) {
    await loseMajority(stack);
    rqBot.push(await botRestoreQuorum(stack, eventsUrl));
    await stack.lab.waitHealthy();
    await loseMajority(stack);
    rqScript.push(await scriptRestoreQuorum(stack));
    await stack.lab.waitHealthy();
  }
  rows.push([`restore-quorum (${FILL_MB} MB)`, summarize(rqBot), summarize(rqScript)]);

  // A backup of a database of more than 1 GB: the worker's memory stays flat while it streams and verifies.
  bigBackup = await backupMemory(stack, eventsUrl, cluster, BIG_DB_MB * 1024 ** 2);

  await stack.lab.killMember('m2');
  await stack.lab.killMember('m3');
  const deadBaseline = await etcdctlRuns(DEAD_RUNS);
  const dead = await botRuns(DEAD_RUNS, 'd');
  rows.push(['status, 2 of 3 dead: completion', dead.done, deadBaseline]);
  rows.push(['status, 2 of 3 dead: ack', dead.ack, deadBaseline]);
  await certRow('2 of 3 dead', 'd2');

  printTable('etcd-medic bench (ms; base = `etcdctl endpoint status`, the same burst against a bare Node HTTP server, `etcdctl snapshot save`, an etcdctl/ssh script doing the same steps, or the status job without its certificate check; ratio = bot median / base median)', rows);
  printBurst(concurrent);
  console.log(`\n${throughput}`);
  if (bigBackup) printBackupMemory(bigBackup);
  console.log(`RSS: ${(rssBefore / 1024 ** 2).toFixed(0)} MB after start, ${(process.memoryUsage().rss / 1024 ** 2).toFixed(0)} MB at the end (worker and lab supervisors in one process; the bot runs apart)`);
  await printMetricsView([bot.port, medic.opsPort!]);

  await stopAll();
  await replaceProfiles([`replace m3, kubeadm (${FILL_MB} MB)`, kubeadmReplace[1], kubeadmReplace[2]]);
  await csrCases();
  await statusFrozenBench(join(tmpdir(), 'etcd-medic-bench-frozen'), 148, FROZEN_RUNS, (s) => console.error(`[lab] ${s}`));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
