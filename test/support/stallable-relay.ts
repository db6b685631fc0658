import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay to Redis that can hold everything back for a while: the worker
 * behind it "loses Redis" (a network partition, a long pause) and then comes
 * back, with whatever it sent meanwhile arriving late.
 */
export class StallableRelay {
  private server: Server | null = null;
  private held = false;
  private readonly pairs: [Socket, Socket][] = [];
  port = 0;
  constructor(private readonly target: number) {}
  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      this.pairs.push([client, upstream]);
      client.pipe(upstream);
      upstream.pipe(client);
      if (this.held) (client.pause(), upstream.pause());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }
  hold(): void {
    this.held = true;
    for (const [a, b] of this.pairs) (a.pause(), b.pause());
  }
  release(): void {
    this.held = false;
    for (const [a, b] of this.pairs) (a.resume(), b.resume());
  }
  async stop(): Promise<void> {
    for (const [a, b] of this.pairs) (a.destroy(), b.destroy());
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}
