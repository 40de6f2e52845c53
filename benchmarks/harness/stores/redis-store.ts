// Redis through ioredis: a small pool of connections used in turn (ioredis pipelines the
// commands of one connection by itself). With `waitReplicas` > 0 every write is
// `SET` + `WAIT <n> <timeout>` in one round trip, Redis's closest analogue of a write
// quorum: it returns once n replicas acknowledged the write, or errors when the timeout
// passes first.

import { Redis } from 'ioredis';
import type { KvStore } from '../load-runner.js';

export class RedisStore implements KvStore {
  private next = 0;

  private constructor(
    readonly name: string,
    private readonly conns: Redis[],
    private readonly waitReplicas: number,
    private readonly waitTimeoutMs: number,
  ) {}

  static async open(o: { name: string; host: string; port: number; connections: number; waitReplicas?: number; waitTimeoutMs?: number }): Promise<RedisStore> {
    const conns: Redis[] = [];
    for (let i = 0; i < o.connections; i++) {
      const c = new Redis({ host: o.host, port: o.port, lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: 1 });
      await c.connect();
      conns.push(c);
    }
    return new RedisStore(o.name, conns, o.waitReplicas ?? 0, o.waitTimeoutMs ?? 1000);
  }

  private conn(): Redis {
    const c = this.conns[this.next]!;
    this.next = (this.next + 1) % this.conns.length;
    return c;
  }

  async read(key: Buffer): Promise<Buffer | undefined> {
    const v = await this.conn().getBuffer(key);
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

  async insertMany(records: [Buffer, Buffer][]): Promise<void> {
    const p = this.conn().pipeline();
    for (const [k, v] of records) p.set(k, v);
    if (this.waitReplicas > 0) p.call('WAIT', String(this.waitReplicas), String(this.waitTimeoutMs * 10));
    const out = await p.exec();
    for (const [err] of out ?? []) if (err) throw err;
  }

  async close(): Promise<void> {
    await Promise.all(this.conns.map((c) => c.quit().catch(() => c.disconnect())));
  }
}
