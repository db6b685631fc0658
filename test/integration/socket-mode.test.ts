import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/lab/redis.js';
import { blockActionsPayload, slashCommandPayload } from '../../src/lab/signed-requests.js';
import { FakeSocketMode } from '../support/fake-socket-mode.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';
import { answerAt, latest, textOf, waitForGate, waitForRunStatus } from '../support/slack-view.js';
import { waitForStatusAnswer } from '../../src/lab/slack-view.js';

// Socket Mode: the bot opens a WebSocket to Slack (no public URL); commands and clicks arrive as envelopes it acks.
describe('Socket Mode', () => {
  const APP_TOKEN = 'xapp-1-ALAB-lab-socket';
  let t: MedicLab;
  let socket: FakeSocketMode;
  let port: number;
  let n = 0;

  beforeAll(async () => {
    port = await freePort();
    t = await startMedicLab('socket-mode', 117, {
      env: { SLACK_APP_TOKEN: APP_TOKEN, PORT: String(port) },
      withSlack: async (slack) => {
        socket = new FakeSocketMode(slack, APP_TOKEN);
        await socket.start();
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await socket?.stop();
  });

  const command = (text: string, user = 'UALICE') =>
    socket.deliver('slash_commands', slashCommandPayload({ text, userId: user, channelId: 'CSOCKET', responseUrl: t.slack.responseUrl(`sm-${++n}`) }));

  it('carries a slash command to a posted answer: acked on the socket, the status in the channel', async () => {
    // The connection was opened with the app-level token at start, and Slack greeted it.
    expect(socket.opened).toBe(1);
    expect(socket.open).toHaveLength(1);
    const since = t.slack.lastSeq;
    const ack = await command('status');
    expect(ack.payload).toMatchObject({ response_type: 'ephemeral' });
    expect(String(ack.payload.text)).toMatch(/\(job `[^`]+`\)$/);
    // The verdict, whether it came as the post or as the redraw of a progress message (a slow, loaded machine).
    const { first: posted, final: post } = await waitForStatusAnswer(t.slack, 'lab', 20_000, since);
    expect(posted.body.channel).toBe('CSOCKET');
    expect(String(post.body.text)).toContain('etcd lab: HEALTHY');
    // The bot's own HTTP port serves only health and metrics in this mode.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('carries a button click: a second person rejects a plan through the socket and the run ends', async () => {
    const since = t.slack.lastSeq;
    await command('replace m3 --force');
    const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && /^Replace m3 in lab/.test(String(r.body.text)), 30_000, since);
    const gate = await waitForGate(t.slack, plan.ts!, 1);
    const responseUrl = t.slack.responseUrl(`sm-click-${++n}`);
    const click = blockActionsPayload({ userId: 'UBOB', channelId: 'CSOCKET', messageTs: plan.ts!, actionId: 'medic_reject', blockId: gate.blockId, value: gate.reject, responseUrl });
    const ack = await socket.deliver('interactive', click);
    expect(ack.envelopeId).toBeTruthy();
    expect(await answerAt(t.slack, responseUrl)).toContain('Rejected step 2');
    expect(await waitForRunStatus(t.slack, plan.ts!, 'REJECTED')).toContain('rejected by <@UBOB>');
    expect(textOf(latest(t.slack, plan.ts!))).not.toContain('medic_approve');
  });

  it('opens a new connection when Slack asks it to, and goes on answering on it', async () => {
    const first = socket.open[0]!;
    socket.disconnect();
    await socket.until('a second connection', () => socket.opened === 2 && socket.open.length === 1 && socket.open[0] !== first, 20_000);
    const since = t.slack.lastSeq;
    await command('status');
    // The verdict, whether it came as the post or as the redraw of a progress message (a slow, loaded machine).
    const { first: posted, final: post } = await waitForStatusAnswer(t.slack, 'lab', 20_000, since);
    expect(posted.body.channel).toBe('CSOCKET');
    expect(String(post.body.text)).toContain('etcd lab: HEALTHY');
  });
});
