// Merkle leaf upkeep: the node's leaf hashes (leaf-hashes.ts) are built by a full scan at
// start — at full speed, repairs wait for it — and rebuilt every leafRebuildIntervalMs,
// rate-limited, as the safety net for what the incremental path (the replica store's XOR
// toggles on every write) cannot see, such as compaction dropping purged tombstones.
// Single-threaded: one timer; a rebuild's failure is logged and the next one tries again.

import type { Logger } from '../logger.js';
import type { ReplicaStore } from '../replica-store.js';

export interface MerkleLeafUpkeepOptions {
  /** Between two background rebuilds; 0: only the one at start. */
  leafRebuildIntervalMs: number;
  /** Bytes per second a background rebuild reads at most (0: unlimited). */
  leafRebuildRateBytesPerSec: number;
}

export class MerkleLeafUpkeep {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: ReplicaStore,
    private readonly log: Logger,
    private readonly options: MerkleLeafUpkeepOptions,
  ) {}

  /** Builds the leaf hashes now and again every leafRebuildIntervalMs. */
  start(): void {
    this.rebuild();
    if (this.options.leafRebuildIntervalMs > 0) {
      this.timer = setInterval(() => this.rebuild(), this.options.leafRebuildIntervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private rebuild(): void {
    const started = Date.now();
    // The first build at start runs at full speed (repairs wait for it); later ones are throttled.
    const rate = this.store.leaves.ready ? this.options.leafRebuildRateBytesPerSec : 0;
    this.store
      .rebuildLeaves(rate)
      .then((n) => this.log.info({ entries: n, ms: Date.now() - started }, 'merkle leaf hashes rebuilt'))
      .catch((err) => this.log.warn({ err: (err as Error).message }, 'merkle leaf rebuild failed'));
  }
}
