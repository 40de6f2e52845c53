// The link between two data centers in tests and in the dc benchmark: a user-space TCP proxy
// on 127.0.0.1 with one listener per node (the node's remoteAddress, what the nodes and
// clients of the other data center connect to), all sharing one state — up, cut, or up with a one-way delay. Cutting
// it resets the connections through it and holds new ones unanswered until it heals (a
// partition: requests time out), so traffic between the data centers stops while each data
// center's own traffic, which never goes through it, goes on. A delay holds every chunk for
// `delayMs` in each direction, in order. Everything it opened is closed by close().

import net from 'node:net';

interface Pipe {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

/** Chunks written to `to` after `delay()` ms each, in order. */
class DelayedWriter {
  private readonly queue: { due: number; data: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: net.Socket,
    private readonly delay: () => number,
  ) {}

  push(data: Buffer): void {
    const d = this.delay();
    if (d <= 0 && this.queue.length === 0) {
      if (!this.to.destroyed) this.to.write(data);
      return;
    }
    this.queue.push({ due: performance.now() + d, data });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      while (this.queue.length > 0 && this.queue[0]!.due <= now + 0.5) {
        const c = this.queue.shift()!;
        if (!this.to.destroyed) this.to.write(c.data);
      }
      this.schedule();
    }, Math.max(0, this.queue[0]!.due - performance.now()));
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

export class InterDcLink {
  private readonly servers: net.Server[] = [];
  private readonly pipes = new Set<Pipe>();
  private readonly held = new Set<net.Socket>();
  private state: 'up' | 'cut' = 'up';
  private delayMs = 0;
  /** Connections accepted, bytes forwarded (both directions), connections held while cut. */
  readonly counters = { connections: 0, bytes: 0, held: 0 };

  /**
   * Opens a listener on 127.0.0.1 that forwards to `target` ("host:port") through this link;
   * resolves with its address.
   */
  async forward(target: string): Promise<string> {
    const i = target.lastIndexOf(':');
    const host = target.slice(0, i);
    const port = Number(target.slice(i + 1));
    const server = net.createServer((client) => this.accept(client, host, port));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.servers.push(server);
    return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  }

  private accept(client: net.Socket, host: string, port: number): void {
    this.counters.connections++;
    client.on('error', () => undefined);
    if (this.state === 'cut') {
      // Unanswered: the sender's request times out, as across a partition.
      this.counters.held++;
      this.held.add(client);
      client.on('close', () => this.held.delete(client));
      client.pause();
      return;
    }
    const pipe: Pipe = { client, upstream: undefined };
    this.pipes.add(pipe);
    const upstream = net.connect({ host, port });
    pipe.upstream = upstream;
    upstream.on('error', () => client.destroy());
    const toUpstream = new DelayedWriter(upstream, () => this.delayMs);
    const toClient = new DelayedWriter(client, () => this.delayMs);
    client.on('data', (d: Buffer) => {
      this.counters.bytes += d.length;
      toUpstream.push(d);
    });
    upstream.on('data', (d: Buffer) => {
      this.counters.bytes += d.length;
      toClient.push(d);
    });
    const close = () => {
      toUpstream.clear();
      toClient.clear();
      client.destroy();
      upstream.destroy();
      this.pipes.delete(pipe);
    };
    client.on('close', close);
    upstream.on('close', close);
  }

  /** Cuts the link: resets every connection through it; new ones are held unanswered until heal(). */
  cut(): void {
    this.state = 'cut';
    for (const p of [...this.pipes]) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.pipes.clear();
  }

  /** Heals it: the connections held while cut are reset (their senders connect again). */
  heal(): void {
    this.state = 'up';
    for (const s of this.held) s.destroy();
    this.held.clear();
  }

  /** Delays every chunk by `ms` in each direction (0: none). */
  delay(ms: number): void {
    this.delayMs = ms;
  }

  get isCut(): boolean {
    return this.state === 'cut';
  }

  async close(): Promise<void> {
    this.cut();
    for (const s of this.held) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
