import { request } from 'node:http';
import { slackSignature, slashCommandBody } from '../src/lab/signed-requests.js';

/** One signed POST on a connection of its own (node:http: fetch's own cost would blur a floor of a few ms). */
function post(url: URL, secret: string, body: string): Promise<{ status: number; body: string }> {
  const ts = Math.floor(Date.now() / 1000);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          'x-slack-request-timestamp': String(ts),
          'x-slack-signature': slackSignature(secret, ts, body),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `n` people type `/etcd <text>` at the same moment: Slack's side of a burst, run as a process of its
 * own (as Slack is remote), so that what the lab and the worker do meanwhile does not delay the
 * reading of the acks. Prints one JSON line: when the burst started (epoch ms) and each request's
 * time to its ack, in request order.
 *
 * Env: BURST_URL, BURST_SECRET, BURST_N, BURST_TEXT, BURST_CHANNEL (a prefix: request i posts in
 * `${prefix}${i % 10}X${i}`), BURST_RESPONSE_URL (a prefix: request i answers to `${prefix}${i}`).
 */
async function main(): Promise<void> {
  const e = process.env;
  const n = Number(e.BURST_N ?? 100);
  const bodies = Array.from({ length: n }, (_, i) =>
    slashCommandBody({ text: e.BURST_TEXT ?? 'status', userId: `UB${i}`, channelId: `${e.BURST_CHANNEL}${i % 10}X${i}`, responseUrl: `${e.BURST_RESPONSE_URL}${i}` }),
  );
  const url = new URL(e.BURST_URL!);
  const t0 = performance.now();
  const started = performance.timeOrigin + t0;
  const acks = await Promise.all(
    bodies.map(async (body) => {
      const res = await post(url, e.BURST_SECRET!, body);
      if (res.status !== 200) throw new Error(`ack ${res.status}: ${res.body.slice(0, 200)}`);
      return performance.now() - t0;
    }),
  );
  process.stdout.write(`${JSON.stringify({ started, acks })}\n`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
