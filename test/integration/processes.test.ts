import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { FakeSlack } from '../../src/lab/fake-slack.js';
import { startLab, type Lab } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';
import { freePort } from '../../src/lab/redis.js';
import { postSigned, slashCommandBody } from '../../src/lab/signed-requests.js';
import { isStatusVerdictIn } from '../../src/lab/slack-view.js';
import { startMain, type MainProcess } from '../support/main-process.js';

describe('bot and worker as separate processes', () => {
  let lab: Lab;
  let slack: FakeSlack;
  let env: Record<string, string>;
  let port: number;
  let workerPort: number;
  const procs: MainProcess[] = [];

  beforeAll(async () => {
    lab = await startLab({ root: join(inject('labRoot'), 'processes'), subnet: 32 });
    slack = new FakeSlack();
    await slack.start();
    port = await freePort();
    workerPort = await freePort();
    env = {
      ETCD_MEDIC_INVENTORY: lab.inventoryPath,
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: `t-proc-${randomBytes(3).toString('hex')}`,
      SLACK_BOT_TOKEN: 'xoxb-proc-test',
      SLACK_SIGNING_SECRET: 'proc-secret',
      SLACK_API_URL: slack.apiUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      ETCD_MEDIC_HMAC_KEY: randomBytes(32).toString('hex'),
    };
  });

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await slack?.stop();
    await lab?.stop();
  });

  const probe = async (path: '/healthz' | '/readyz', at = port) => {
    const res = await fetch(`http://127.0.0.1:${at}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** One sample of a process's /metrics, as Prometheus would read it (undefined: no such series). */
  const sample = async (at: number, series: string) => {
    const res = await fetch(`http://127.0.0.1:${at}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const line = (await res.text()).split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('`bot` and `worker` answer /etcd status together, and each stops cleanly on SIGTERM', async () => {
    const bot = startMain('bot', env);
    // A worker without the bot serves /healthz, /readyz and /metrics on a port of its own.
    const worker = startMain('worker', { ...env, PORT: String(workerPort) });
    procs.push(bot, worker);

    await waitFor('the bot to report a live worker', async () => (await probe('/readyz').catch(() => ({ status: 0 }))).status === 200, 30_000, 200);
    expect(await probe('/readyz')).toEqual({ status: 200, body: { ok: true, redis: 'up', workers: 1 } });
    expect(await probe('/healthz', workerPort)).toEqual({ status: 200, body: { ok: true } });
    expect(await probe('/readyz', workerPort)).toEqual({ status: 200, body: { ok: true, redis: 'up', workers: 1 } });

    const since = slack.lastSeq;
    const body = slashCommandBody({ text: 'status', userId: 'UALICE', channelId: 'CPROC', responseUrl: slack.responseUrl('proc') });
    const ack = await postSigned(`http://127.0.0.1:${port}/slack/events`, 'proc-secret', body);
    expect(ack.status).toBe(200);
    // A worker process just started: its first status may post a progress message before the verdict redraws it.
    const post = await slack.waitFor(isStatusVerdictIn('CPROC'), 20_000, since);
    expect(String(post.body.text)).toContain('etcd lab: HEALTHY');
    // Each process counts its side of it: the bot the command and its ack, the worker the job and what the cluster looked like.
    expect(await sample(port, 'etcd_medic_commands_total{command="status",outcome="queued"}')).toBe(1);
    expect(await sample(port, 'etcd_medic_command_ack_seconds_count{command="status"}')).toBe(1);
    expect(await sample(port, 'etcd_medic_workers_alive')).toBe(1);
    await waitFor('the worker to count the job', async () => (await sample(workerPort, 'etcd_medic_jobs_total{kind="status",outcome="done"}')) === 1, 10_000, 100);
    expect(await sample(workerPort, 'etcd_medic_cluster_members_up{cluster="lab"}')).toBe(3);
    expect(await sample(workerPort, 'etcd_medic_cluster_quorum{cluster="lab"}')).toBe(1);
    expect(await sample(workerPort, 'etcd_medic_member_db_size_bytes{cluster="lab",member="m1"}')).toBeGreaterThan(0);
    expect(await sample(workerPort, 'etcd_medic_queue_wait_seconds_count{kind="status"}')).toBe(1);

    // The worker leaves on SIGTERM: exit code 0. Readiness says so; the bot stays healthy, so
    // Slack still reaches it (to be told, and for /etcd cancel).
    worker.child.kill('SIGTERM');
    expect((await worker.exit).code).toBe(0);
    expect(await probe('/readyz')).toEqual({ status: 503, body: { ok: false, redis: 'up', workers: 0 } });
    expect(await probe('/healthz')).toEqual({ status: 200, body: { ok: true } });
    const late = await postSigned(`http://127.0.0.1:${port}/slack/events`, 'proc-secret', slashCommandBody({ text: 'cancel r-1a2b3c4d', userId: 'UALICE', channelId: 'CPROC', responseUrl: slack.responseUrl('late') }));
    expect(late.status).toBe(200);
    expect(late.body).toContain('Cancelling run `r-1a2b3c4d`');

    bot.child.kill('SIGTERM');
    expect((await bot.exit).code).toBe(0);
    // Logs are JSON lines; none carries the bot token.
    const logLines = [...bot.out, ...worker.out].join('').split('\n').filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    for (const l of logLines) expect(() => JSON.parse(l)).not.toThrow();
    expect([...bot.out, ...worker.out].join('')).not.toContain('xoxb-proc-test');
  });

  it('refuses to start for a real Slack workspace without ETCD_MEDIC_HMAC_KEY, saying which variable to set', async () => {
    const { ETCD_MEDIC_HMAC_KEY: _k, SLACK_API_URL: _u, ...real } = env;
    const p = startMain('all', real);
    procs.push(p);
    expect((await p.exit).code).toBe(2);
    expect(p.out.join('')).toContain('environment variable ETCD_MEDIC_HMAC_KEY is not set');
    expect(p.out.join('')).toContain('openssl rand -hex 32');
  });

  it('warns at start when anyone may destroy or approve', async () => {
    const open = join(inject('labRoot'), 'star-inventory.yaml');
    const { readFileSync } = await import('node:fs');
    writeFileSync(open, readFileSync(lab.inventoryPath, 'utf8'));
    const p = startMain('bot', { ...env, ETCD_MEDIC_INVENTORY: open, PORT: '0' });
    procs.push(p);
    await waitFor('the start-up warnings', async () => p.out.join('').includes('bot listening'), 30_000, 100);
    const out = p.out.join('');
    expect(out).toContain('workspace.roles.destroy contains \\"*\\"');
    expect(out).toContain('workspace.roles.approve contains \\"*\\"');
    p.child.kill('SIGTERM');
    expect((await p.exit).code).toBe(0);
  });

  it('refuses to start on a broken inventory, naming the file and the path inside it', async () => {
    const broken = join(inject('labRoot'), 'broken-inventory.yaml');
    writeFileSync(broken, 'clusters:\n  - name: lab\n    etcd: { endpoints: [https://127.0.0.1:2379] }\n    members:\n      - { name: m1, host: 127.0.0.1, ssh: { user: root, keyFile: /k, hostKeyFingerprint: nope } }\n');
    const p = startMain('all', { ...env, ETCD_MEDIC_INVENTORY: broken });
    procs.push(p);
    expect((await p.exit).code).toBe(2);
    expect(p.out.join('')).toContain(`${broken}: clusters[0].members[0].ssh.hostKeyFingerprint: expected an OpenSSH fingerprint`);
  });

  it('builds for the image without the lab or the playground, and that build refuses to start without a Slack workspace', async () => {
    // The image's build (npm run build: tsconfig.build.json), inside the project so its packages resolve.
    const out = join(process.cwd(), 'node_modules', '.cache', 'etcd-medic-test', `dist-${process.pid}`);
    rmSync(out, { recursive: true, force: true });
    const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', out], { encoding: 'utf8', timeout: 120_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');
    try {
      expect(existsSync(join(out, 'src/main.js'))).toBe(true);
      expect(existsSync(join(out, 'src/lab'))).toBe(false);
      expect(existsSync(join(out, 'src/playground'))).toBe(false);
      // Below node_modules, Node looks for no package.json above: say this build is ES modules, as the image's is.
      writeFileSync(join(out, 'package.json'), '{"type":"module"}');
      const run = spawnSync(process.execPath, [join(out, 'src/main.js'), 'all'], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, NODE_ENV: 'production' } });
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('SLACK_BOT_TOKEN is not set. This build runs only against a Slack workspace');
      expect(run.stderr).toContain('npm ci && npm start');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
