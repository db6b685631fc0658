import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackRecord } from '../../src/lab/fake-slack.js';
import { waitFor } from '../../src/lab/proc.js';
import { ackText } from '../../src/lab/signed-requests.js';
import { isStatusProgress, textOf, waitForStatusAnswer } from '../../src/lab/slack-view.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';

const VERDICTS = /HEALTHY|DEGRADED|QUORUM LOST|UNREACHABLE/;

describe('/etcd status with members that do not answer: what is known first, then the verdict in the same message', () => {
  let t: MedicLab;

  beforeAll(async () => {
    t = await startMedicLab('status-progressive', 147);
    await t.lab.waitHealthy();
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** Types `/etcd status` in `channel`: the job's ID from the ack and the seq to read the channel from. */
  async function askStatus(channel: string): Promise<{ job: string; since: number }> {
    const since = t.slack.lastSeq;
    const res = await t.command('status', { channel });
    expect(res.status).toBe(200);
    const job = /job `(status-[0-9a-f]{8})`/.exec(ackText(res.body))?.[1];
    expect(job).toBeTruthy();
    return { job: job!, since };
  }

  /** Everything the job sent is in once the worker logged it done: nothing can arrive after. */
  const jobDone = (job: string) => waitFor(`status job ${job} to end`, () => t.logs.some((l) => l.includes(`"job":"${job}"`) && l.includes('job done')), 20_000);

  const inChannel = (channel: string, since: number): SlackRecord[] =>
    t.slack.messages((r) => r.seq > since && r.kind === 'api' && (r.method === 'chat.postMessage' || r.method === 'chat.update') && r.body.channel === channel);

  /** SIGSTOP: the process is hung, its ports still accept connections and nothing is answered. SIGCONT in the returned thaw. */
  function freeze(names: string[]): () => Promise<void> {
    const pids = names.map((n) => t.lab.host(n).supervisor.pid()!);
    for (const p of pids) process.kill(p, 'SIGSTOP');
    return async () => {
      for (const p of pids) process.kill(p, 'SIGCONT');
      await t.lab.waitHealthy();
    };
  }

  it('two frozen members, the worker\'s first status (no connection open yet): a message naming who is waited for and the deadline, then the same message redrawn with QUORUM LOST', async () => {
    // The fault: m2 and m3 hang (a host stuck on its disk): connections are accepted, nothing is answered.
    const thaw = freeze(['m2', 'm3']);
    try {
      const { job, since } = await askStatus('CFROZEN');
      const { first, final } = await waitForStatusAnswer(t.slack, 'lab', 20_000, since);

      // What is known, before anything is certain: m1's answer, who is still asked and until when; no verdict.
      expect(first.body.channel).toBe('CFROZEN');
      expect(isStatusProgress(first)).toBe(true);
      expect(String(first.body.text)).toBe('etcd lab: checking, waiting for m2 and m3 (deadline 2 s)');
      const shown = textOf(first);
      expect(shown).not.toMatch(VERDICTS);
      expect(shown).toContain('*No verdict yet*: waiting for m2 and m3 (deadline 2 s). So far m1 answered.');
      expect(shown).toMatch(/\*m1\* `[0-9a-f]+` · voter · started\n[^\n]*\n:white_check_mark: reachable · term \d+ · index \d+/);
      expect(shown).toContain('*m2* · client https://127.0.147.2:2379\nasked, no answer yet (deadline 2 s)');
      expect(shown).toContain('*m3* · client https://127.0.147.3:2379\nasked, no answer yet (deadline 2 s)');

      // The verdict redraws that same message once m2 and m3 have run out their deadline.
      expect(final.method).toBe('chat.update');
      expect(final.ts).toBe(first.ts);
      expect(String(final.body.text)).toMatch(/^etcd lab: QUORUM LOST\. Only [01] of 3 voting members are up with a leader; 2 are needed/);
      const verdict = textOf(final);
      expect(verdict.match(/:x: \*unreachable\* \(timeout\): no answer before the deadline/g)).toHaveLength(2);
      expect(verdict).toMatch(/\*m1\*[^\n]*\n[^\n]*\n:white_check_mark: reachable · term \d+/);
      expect(verdict).toContain('`/etcd restore-quorum`');

      // One message in the channel; whatever redraw came before the verdict carried none; the verdict is drawn last.
      await jobDone(job);
      const all = inChannel('CFROZEN', since);
      expect(all.filter((r) => r.method === 'chat.postMessage')).toHaveLength(1);
      expect(all.every((r) => r.ts === first.ts)).toBe(true);
      expect(all.at(-1)!.seq).toBe(final.seq);
      for (const r of all.slice(0, -1)) expect(textOf(r)).not.toMatch(VERDICTS);
    } finally {
      await thaw();
    }
  });

  it('one frozen follower: waiting for it, then DEGRADED in the same message, naming it', async () => {
    const leader = await t.lab.leaderHex();
    const follower = (await t.lab.memberList()).find((m) => m.id !== leader)!.name;
    // The fault: one follower hangs; the other two still make a quorum.
    const thaw = freeze([follower]);
    try {
      const { job, since } = await askStatus('CONEFROZEN');
      const { first, final } = await waitForStatusAnswer(t.slack, 'lab', 20_000, since);
      expect(String(first.body.text)).toBe(`etcd lab: checking, waiting for ${follower} (deadline 2 s)`);
      expect(textOf(first)).not.toMatch(VERDICTS);
      expect(final.ts).toBe(first.ts);
      expect(String(final.body.text)).toContain('etcd lab: DEGRADED (can lose 0 more)');
      expect(textOf(final)).toContain(`\`/etcd replace ${follower}\``);
      await jobDone(job);
      expect(inChannel('CONEFROZEN', since).filter((r) => r.method === 'chat.postMessage')).toHaveLength(1);
    } finally {
      await thaw();
    }
  });

  it('a healthy cluster gets one message with its verdict and no "waiting" message before it', async () => {
    const { job, since } = await askStatus('CHEALTHY');
    const { first, final } = await waitForStatusAnswer(t.slack, 'lab', 20_000, since);
    expect(final).toBe(first);
    expect(String(first.body.text)).toMatch(/^etcd lab: HEALTHY\./);
    await jobDone(job);
    // Every member answered within the grace: the verdict is the only thing drawn, once.
    expect(inChannel('CHEALTHY', since).map((r) => r.method)).toEqual(['chat.postMessage']);
  });
});
