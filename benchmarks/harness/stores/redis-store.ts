// Redis through ioredis: a small pool of connections used in turn (ioredis pipelines the
// commands of one connection by itself). With `waitReplicas` > 0 every write is
// `SET` + `WAIT <n> <timeout>` in one round trip, Redis's closest analogue of a write
// quorum: it returns once n replicas acknowledged the write, or errors when the timeout
// passes first. Increments (the counter workload) are INCRBY, with the same WAIT. WAIT
// blocks its connection until it returns, so with it reads go over connections of their
// own (as many again), never queued behind a WAIT. Single-threaded: used from the load
// generator's event loop.

import { Redis } from 'ioredis';
import type { KvStore } from '../load-runner.js';

export class RedisStore implements KvStore {
  private next = 0;
  private nextRead = 0;

  private constructor(
    readonly name: string,
    /** Writes (and, with WAIT, only writes). */
    private readonly conns: Redis[],
    /** Reads: the write connections when there is no WAIT, connections of their own when there is. */
    private readonly readConns: Redis[],
    private readonly waitReplicas: number,
    private readonly waitTimeoutMs: number,
  ) {}

  static async open(o: { name: string; host: string; port: number; connections: number; waitReplicas?: number; waitTimeoutMs?: number }): Promise<RedisStore> {
    const waitReplicas = o.waitReplicas ?? 0;
    const connect = async (n: number): Promise<Redis[]> => {
      const out: Redis[] = [];
      for (let i = 0; i < n; i++) {
        const c = new Redis({ host: o.host, port: o.port, lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: 1 });
        await c.connect();
        out.push(c);
      }
      return out;
    };
    const conns = await connect(o.connections);
    const readConns = waitReplicas > 0 ? await connect(o.connections) : conns;
    return new RedisStore(o.name, conns, readConns, waitReplicas, o.waitTimeoutMs ?? 1000);
  }

  /** Connections a read may use (for tests: with WAIT, none of them is a write connection). */
  get readConnections(): readonly Redis[] {
    return this.readConns;
  }

  private conn(): Redis {
    const c = this.conns[this.next]!;
    this.next = (this.next + 1) % this.conns.length;
    return c;
  }

  private readConn(): Redis {
    const c = this.readConns[this.nextRead]!;
    this.nextRead = (this.nextRead + 1) % this.readConns.length;
    return c;
  }

  async read(key: Buffer): Promise<Buffer | undefined> {
    const v = await this.readConn().getBuffer(key);
    return v ?? undefined;
  }

  async update(key: Buffer, value: Buffer): Promise<void> {
    const c = this.conn();
    if (this.waitReplicas === 0) {
      await c.set(key, value);
      return;
    }
    // Sent back to back on one connection: WAIT covers this SET (and any earlier one on it).
    const [, acked] = await Promise.all([c.set(key, value), c.call('WAIT', this.waitReplicas, this.waitTimeoutMs) as Promise<number>]);
    if (acked < this.waitReplicas) {
      throw Object.assign(new Error(`WAIT: ${acked} of ${this.waitReplicas} replicas acknowledged in ${this.waitTimeoutMs} ms`), { code: 'WAIT_TIMEOUT' });
    }
  }

  /** INCRBY, followed by WAIT as writes are when replicas must acknowledge. */
  async increment(key: Buffer, by: number): Promise<void> {
    const c = this.conn();
    if (this.waitReplicas === 0) {
      await c.incrby(key, by);
      return;
    }
    const [, acked] = await Promise.all([c.incrby(key, by), c.call('WAIT', this.waitReplicas, this.waitTimeoutMs) as Promise<number>]);
    if (acked < this.waitReplicas) {
      throw Object.assign(new Error(`WAIT: ${acked} of ${this.waitReplicas} replicas acknowledged in ${this.waitTimeoutMs} ms`), { code: 'WAIT_TIMEOUT' });
    }
  }

  async insertMany(records: [Buffer, Buffer][]): Promise<void> {
    const p = this.conn().pipeline();
    for (const [k, v] of records) p.set(k, v);
    if (this.waitReplicas > 0) p.call('WAIT', String(this.waitReplicas), String(this.waitTimeoutMs * 10));
    const out = await p.exec();
    for (const [err] of out ?? []) if (err) throw err;
  }

  async close(): Promise<void> {
    const all = this.readConns === this.conns ? this.conns : [...this.conns, ...this.readConns];
    await Promise.all(all.map((c) => c.quit().catch(() => c.disconnect())));
  }
}
