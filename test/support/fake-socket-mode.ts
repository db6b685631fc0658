import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { FakeSlack } from '../../src/lab/fake-slack.js';

/** What the app sent back for one envelope: its ack and the response payload it carried, if any. */
export interface SocketAck {
  envelopeId: string;
  payload: Record<string, unknown>;
}

/**
 * Slack's Socket Mode, played on this machine: `apps.connections.open` (on the
 * fake Web API, with the app-level token) hands out a WebSocket URL served
 * here; each connection is greeted with `hello`; events go out as envelopes the
 * app must acknowledge by `envelope_id` within 3 s, as Slack requires; a
 * `disconnect` message asks the app to open a new connection.
 */
export class FakeSocketMode {
  private wss: WebSocketServer | null = null;
  private readonly sockets: WebSocket[] = [];
  private readonly acks = new Map<string, SocketAck>();
  private waiters: (() => void)[] = [];
  /** How many times the app asked for a connection URL. */
  opened = 0;

  constructor(
    private readonly slack: FakeSlack,
    private readonly appToken: string,
  ) {}

  async start(): Promise<void> {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => this.wss!.once('listening', () => r()));
    const port = (this.wss.address() as AddressInfo).port;
    this.slack.methods.set('apps.connections.open', (_body, req) => {
      // Slack takes only the app-level token here, never the bot token.
      if (req.headers.authorization !== `Bearer ${this.appToken}`) return { ok: false, error: 'invalid_auth' };
      this.opened++;
      return { ok: true, url: `ws://127.0.0.1:${port}/link/?ticket=${randomBytes(8).toString('hex')}` };
    });
    this.wss.on('connection', (ws) => {
      this.sockets.push(ws);
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as { envelope_id?: string; payload?: Record<string, unknown> };
        if (!m.envelope_id) return;
        this.acks.set(m.envelope_id, { envelopeId: m.envelope_id, payload: m.payload ?? {} });
        this.wake();
      });
      ws.on('close', () => this.wake());
      ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'lab' }, connection_info: { app_id: 'ALAB' } }));
      this.wake();
    });
  }

  async stop(): Promise<void> {
    this.slack.methods.delete('apps.connections.open');
    for (const ws of this.sockets) ws.terminate();
    await new Promise((r) => (this.wss ? this.wss.close(r) : r(undefined)));
  }

  /** Open connections, oldest first. */
  get open(): WebSocket[] {
    return this.sockets.filter((ws) => ws.readyState === ws.OPEN);
  }

  /** Resolves once `cond` holds, re-checked on every message, connection and close; rejects after `timeoutMs`. */
  async until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Socket Mode stand-in: ${what} did not happen within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends one event envelope on the newest connection and waits for the app's ack (Slack's bound: 3 s). */
  async deliver(type: 'slash_commands' | 'interactive', payload: Record<string, unknown>): Promise<SocketAck> {
    await this.until('a connection', () => this.open.length > 0);
    const ws = this.open[this.open.length - 1]!;
    const envelopeId = randomBytes(12).toString('hex');
    ws.send(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: type === 'slash_commands', retry_attempt: 0, retry_reason: '' }));
    await this.until(`the ack of envelope ${envelopeId}`, () => this.acks.has(envelopeId), 3000);
    return this.acks.get(envelopeId)!;
  }

  /** Slack asks the app to reconnect (as it does every few hours): the app should open a new connection. */
  disconnect(reason = 'refresh_requested'): void {
    for (const ws of this.open) ws.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'lab' } }));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
