// The transport of the node's embedded client (the coordinator of the public API): batches
// for this node are applied in-process by the batch applier and this node's member list is
// read directly — no loopback HTTP; every other call goes to the real transport. It does
// not own the real transport (the server closes it). Safe for concurrent calls.

import type { Transport } from '../sdk/transport.js';
import type { BatchRequest } from '../sdk/wire/protocol.js';
import { Routes } from '../sdk/wire/protocol.js';
import type { NodeParts } from './node-parts.js';

export class LocalShortcutTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly self: string,
    private readonly n: Pick<NodeParts, 'batches' | 'membership' | 'clock'>,
  ) {}

  async call<T>(address: string, path: string, body: unknown, opts: { timeoutMs: number; method?: 'GET' | 'POST' }): Promise<T> {
    if (address === this.self) {
      if (path === Routes.batch) {
        const b = body as BatchRequest;
        return (await this.n.batches.apply(b.ops, b.timeoutMs ? performance.now() + b.timeoutMs : undefined, b.ring)) as T;
      }
      if (path === Routes.members) return { ...this.n.membership.view(), now: this.n.clock.nowMs() } as T;
    }
    return this.inner.call<T>(address, path, body, opts);
  }

  async close(): Promise<void> {
    // The server closes the shared transport itself.
  }
}
