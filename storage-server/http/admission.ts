// Admission control at the door of each request that does work on this node (public API,
// batches, shipping between data centers): asks the load shedder and refuses what this
// node could not finish in time with OVERLOADED (503, Retry-After), counted in
// ringkv_shed_requests_total. Off when loadShedding is false. Single-threaded.

import { OverloadedError } from '../../sdk/errors.js';
import type { LoadShedder } from './load-shedder.js';

export interface AdmissionOptions {
  /** loadShedding: false admits everything. */
  enabled: boolean;
  nodeId: string;
  /** Called for each refused request (the metric). */
  onShed: () => void;
}

export class Admission {
  constructor(
    private readonly shedder: LoadShedder,
    private readonly o: AdmissionOptions,
  ) {}

  /** Throws OverloadedError when the shedder refuses `ops` operations with `budgetMs` left. */
  admit(ops: number, budgetMs: number | undefined): void {
    if (!this.o.enabled) return;
    const d = this.shedder.admit(ops, budgetMs);
    if (d.shed) {
      this.o.onShed();
      throw new OverloadedError(`node ${this.o.nodeId} sheds load: ${d.reason}`, d.retryAfterSec ?? 1);
    }
  }
}
