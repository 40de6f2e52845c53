// ringkv through its real SDK: one client (it coalesces concurrent operations per node
// into batch requests by itself), reads, writes and counter increments at the consistency
// under test.

import { connect } from '../../../sdk/index.js';
import type { ConnectOptions, Consistency, RingkvClient } from '../../../sdk/index.js';
import type { KvStore } from '../load-runner.js';

export class RingkvStore implements KvStore {
  readonly name = 'ringkv';
  private readonly readOpts: { consistency: Consistency };
  private readonly writeOpts: { consistency: Consistency };

  private constructor(
    private readonly kv: RingkvClient<Buffer>,
    consistency: Consistency,
  ) {
    this.readOpts = { consistency };
    this.writeOpts = { consistency };
  }

  /** `client`: more connect options (hedging and the near cache for the tail benchmark, `localDc` in a cluster of several data centers). */
  static async open(seeds: string[], consistency: Consistency, timeoutMs = 5000, client: Partial<ConnectOptions<Buffer>> = {}): Promise<RingkvStore> {
    const kv = await connect({ ...client, seeds, valueEncoding: 'bytes', timeoutMs });
    return new RingkvStore(kv, consistency);
  }

  /** The SDK client (batch counters, replicas). */
  get client(): RingkvClient<Buffer> {
    return this.kv;
  }

  async read(key: Buffer): Promise<Buffer | undefined> {
    const r = await this.kv.get(key, this.readOpts);
    return r?.value;
  }

  async update(key: Buffer, value: Buffer): Promise<void> {
    await this.kv.put(key, value, this.writeOpts);
  }

  /** A counter data type's increment: one replica coordinates, W hold the result. */
  async increment(key: Buffer, by: number): Promise<void> {
    await this.kv.counter(key).increment(by, this.writeOpts);
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}
