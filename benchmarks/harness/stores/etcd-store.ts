// etcd through the etcd3 client (gRPC): linearizable reads (etcd's default: the leader
// confirms it is still the leader through a quorum round) and writes committed by a Raft
// majority, the strongly consistent peer. Bulk loads use transactions of many puts.

import { Etcd3 } from 'etcd3';
import type { KvStore } from '../load-runner.js';

/** etcd's default --max-txn-ops is 128. */
const TXN_OPS = 100;

export class EtcdStore implements KvStore {
  private constructor(
    readonly name: string,
    private readonly client: Etcd3,
  ) {}

  static async open(name: string, endpoints: string[]): Promise<EtcdStore> {
    const client = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
    return new EtcdStore(name, client);
  }

  async read(key: Buffer): Promise<Buffer | undefined> {
    const v = await this.client.get(key).buffer();
    return v ?? undefined;
  }

  async update(key: Buffer, value: Buffer): Promise<void> {
    await this.client.put(key).value(value).exec();
  }

  async insertMany(records: [Buffer, Buffer][]): Promise<void> {
    for (let i = 0; i < records.length; i += TXN_OPS) {
      const part = records.slice(i, i + TXN_OPS);
      await this.client.kv.txn({ compare: [], success: part.map(([key, value]) => ({ request_put: { key, value } })), failure: [] });
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
