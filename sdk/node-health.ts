// The client's own passive failure detector. Every request outcome is reported here; a
// node whose requests fail for reachability (unreachable, timed out) `failuresToAvoid`
// times in a row is avoided for a back-off period (doubling per relapse up to
// `maxBackoffMs`), then tried again. A node that refused a request for load (503
// OVERLOADED) is no failure: it is avoided for the Retry-After it asked, its failure count
// untouched. Membership from the servers is the other input: a node is usable when
// membership says it is reachable and it is not being avoided.

import type { Clock } from './clock.js';
import type { RingkvError } from './errors.js';

export interface NodeHealthOptions {
  /** Consecutive reachability failures before a node is avoided. Default 3. */
  failuresToAvoid: number;
  /** First back-off period. Default 1000 ms. */
  backoffMs: number;
  /** Longest back-off period. Default 30 s. */
  maxBackoffMs: number;
}

export const nodeHealthDefaults: NodeHealthOptions = { failuresToAvoid: 3, backoffMs: 1000, maxBackoffMs: 30_000 };

interface State {
  consecutive: number;
  avoidUntilMs: number;
  backoffMs: number;
  /** Until when the node asked not to be sent to because it sheds load (0: it did not). */
  overloadedUntilMs: number;
}

/** True for failures that say something about the node's reachability. */
export function isReachabilityFailure(err: unknown): boolean {
  const code = (err as RingkvError)?.code;
  return code === 'NODE_UNAVAILABLE' || code === 'TIMEOUT' || code === 'CLOSED' || code === 'UNAVAILABLE';
}

export class NodeHealth {
  private readonly states = new Map<string, State>();

  constructor(
    private readonly clock: Clock,
    private readonly o: NodeHealthOptions = nodeHealthDefaults,
  ) {}

  onSuccess(node: string): void {
    const s = this.states.get(node);
    if (s) {
      s.consecutive = 0;
      s.avoidUntilMs = 0;
      s.backoffMs = this.o.backoffMs;
      s.overloadedUntilMs = 0;
    }
  }

  onFailure(node: string, err: unknown): void {
    if (!isReachabilityFailure(err)) return;
    let s = this.states.get(node);
    if (!s) {
      s = { consecutive: 0, avoidUntilMs: 0, backoffMs: this.o.backoffMs, overloadedUntilMs: 0 };
      this.states.set(node, s);
    }
    s.consecutive++;
    const now = this.clock.nowMs();
    if (s.consecutive >= this.o.failuresToAvoid && s.avoidUntilMs <= now) {
      s.avoidUntilMs = now + s.backoffMs;
      s.backoffMs = Math.min(this.o.maxBackoffMs, s.backoffMs * 2);
    }
  }

  /**
   * The node refused a request because it is overloaded and asked not to be sent to for
   * `retryAfterMs`: it is avoided that long (at least), whatever its failure count.
   */
  onOverloaded(node: string, retryAfterMs: number): void {
    let s = this.states.get(node);
    if (!s) {
      s = { consecutive: 0, avoidUntilMs: 0, backoffMs: this.o.backoffMs, overloadedUntilMs: 0 };
      this.states.set(node, s);
    }
    const until = this.clock.nowMs() + Math.min(Math.max(retryAfterMs, 0), this.o.maxBackoffMs);
    if (until > s.avoidUntilMs) s.avoidUntilMs = until;
    if (until > s.overloadedUntilMs) s.overloadedUntilMs = until;
  }

  /** Milliseconds the node still asked not to be sent to because it sheds load (0 when none). */
  overloadedForMs(node: string): number {
    const s = this.states.get(node);
    return s ? Math.max(0, s.overloadedUntilMs - this.clock.nowMs()) : 0;
  }

  /** True while the node is in its back-off period. */
  isAvoided(node: string): boolean {
    const s = this.states.get(node);
    return s !== undefined && s.avoidUntilMs > this.clock.nowMs();
  }

  /** Nodes currently avoided. */
  avoided(): string[] {
    const now = this.clock.nowMs();
    return [...this.states].filter(([, s]) => s.avoidUntilMs > now).map(([n]) => n);
  }
}
