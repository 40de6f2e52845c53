// SWIM-style failure detection. Every probe interval the node pings each other member
// (a random subset of at most `probesPerRound` in large clusters). A ping that is not
// answered within `probeTimeoutMs` is retried indirectly through `indirectProbes` other
// members (ping-req); only when neither the direct nor any indirect probe gets through is
// it a miss. `suspectAfterMisses` consecutive misses make the member `suspect` (gossiped
// at once); a suspect that has not refuted (by raising its incarnation) within
// `suspicionTimeoutMs` becomes `down` at its first missed probe after that (a miss this node
// saw itself, so a prober that was paused past the deadline probes again before judging).
// A down member that answers pings again is taken
// back only through its own refutation, which gossip brings (see membership.ts). Both
// sides of the ping protocol are here: probing (probeRound) and answering (handlePing,
// handlePingReq). Single-threaded; probes of different members overlap, one per member.
// Timings with the defaults are in storage-server/membership/README.md.

import type { Clock } from '../../sdk/clock.js';
import { InvalidArgumentError, MalformedRequestError } from '../../sdk/errors.js';
import type { Transport } from '../../sdk/transport.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { Logger } from '../logger.js';
import type { MemberInfo } from '../../sdk/membership.js';
import type { MemberEntry, Membership } from './membership.js';
import { publicInfo } from './membership.js';

export interface FailureDetectorOptions {
  /** Time between probe rounds. Default 1000 ms. */
  probeIntervalMs: number;
  /** Time a direct ping may take. Default 500 ms. */
  probeTimeoutMs: number;
  /** Members asked to ping a member that missed a direct ping. Default 2. */
  indirectProbes: number;
  /** Consecutive missed probes before a member is suspect. Default 3. */
  suspectAfterMisses: number;
  /** Time a suspect has to refute before it is down. Default 2000 ms. */
  suspicionTimeoutMs: number;
  /** Most members probed per round (large clusters probe a random subset). Default 16. */
  probesPerRound: number;
}

export const failureDetectorDefaults: FailureDetectorOptions = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectProbes: 2,
  suspectAfterMisses: 3,
  suspicionTimeoutMs: 2000,
  probesPerRound: 16,
};

export interface PingMessage {
  v: number;
  from: string;
  /** Sender's incarnation, so the receiver learns of restarts quickly. */
  incarnation: number;
  /** The sender's record of the receiver when it suspects it: the receiver refutes at once. */
  about?: MemberInfo;
}

export interface PingReqMessage {
  v: number;
  from: string;
  /** The member to probe on the sender's behalf. */
  target: string;
  address: string;
  timeoutMs: number;
}

/** The answer to a ping: the receiver's incarnation (after any refutation the ping caused). */
export interface PingAnswer {
  ok: true;
  incarnation: number;
}

export class FailureDetector {
  private readonly misses = new Map<string, number>();
  /** When each member's last missed probe ended (clock ms); cleared when it answers. */
  private readonly lastMissMs = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly probing = new Set<string>();
  readonly counters = { probes: 0, directFailures: 0, indirectProbes: 0, misses: 0, suspected: 0, markedDown: 0 };

  constructor(
    private readonly membership: Membership,
    private readonly transport: Transport,
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly o: FailureDetectorOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.timer = setInterval(() => void this.probeRound(), this.o.probeIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * One probe round (the timer runs one every probeIntervalMs): starts a probe of every
   * member (a random subset in large clusters) that is not still being probed, then expires
   * suspicions. The timer never waits for slow probes, so a paused member accrues a miss
   * every probe duration (direct + indirect timeouts); the returned promise resolves when
   * the probes this round started have finished.
   */
  probeRound(): Promise<void> {
    const self = this.membership.selfId;
    let targets = this.membership.members().filter((m) => m.id !== self && m.state !== 'left' && !this.probing.has(m.id));
    if (targets.length > this.o.probesPerRound) targets = shuffle(targets).slice(0, this.o.probesPerRound);
    const probes: Promise<void>[] = [];
    for (const m of targets) {
      this.probing.add(m.id);
      probes.push(this.probe(m.id, m.address).finally(() => this.probing.delete(m.id)));
    }
    this.expireSuspicions();
    return Promise.all(probes).then(() => undefined);
  }

  /**
   * Answers a ping. The prober suspects this node when the ping carries its record of it:
   * this node refutes at once rather than at the next gossip round, and answers with the
   * new incarnation. Throws MalformedRequestError for a message without a sender.
   */
  handlePing(msg: PingMessage): PingAnswer {
    if (!msg || typeof msg.from !== 'string') throw new MalformedRequestError('ping needs from');
    this.membership.heardFrom(msg.from);
    if (msg.about && msg.about.id === this.membership.selfId) this.membership.mergeList([msg.about]);
    return { ok: true, incarnation: this.membership.self.incarnation };
  }

  /** Pings `msg.target` on the prober's behalf (timeout clamped to 1..5000 ms). */
  async handlePingReq(msg: PingReqMessage): Promise<{ ok: boolean }> {
    if (!msg || typeof msg.address !== 'string' || typeof msg.target !== 'string') throw new MalformedRequestError('ping-req needs target and address');
    // Only a current member, at the address this node knows for it: a ping-req must not make
    // this node send requests to any address a caller names.
    const m = this.membership.get(msg.target);
    if (!m || m.state === 'left' || m.id === this.membership.selfId) {
      throw new InvalidArgumentError(`ping-req target ${JSON.stringify(msg.target).slice(0, 80)} is not a member`);
    }
    if (m.address !== msg.address) throw new InvalidArgumentError(`ping-req: ${m.id} is at ${m.address}, not ${JSON.stringify(msg.address).slice(0, 80)}`);
    const timeoutMs = Math.min(Math.max(1, Number(msg.timeoutMs) || 500), 5000);
    return { ok: await this.ping(this.membership.addressOf(m), timeoutMs, m.id) };
  }

  /** Probes member `id`, whose gossiped address is `address` (reached at the address this node uses for it). */
  private async probe(id: string, address: string): Promise<void> {
    this.counters.probes++;
    const m = this.membership.get(id);
    if (await this.ping(m ? this.membership.addressOf(m) : address, this.o.probeTimeoutMs, id)) return this.alive(id);
    this.counters.directFailures++;
    // Indirect: ask k other reachable members to ping it for us.
    const self = this.membership.selfId;
    const helpers = shuffle(this.membership.members().filter((m) => m.id !== self && m.id !== id && m.state === 'up')).slice(
      0,
      this.o.indirectProbes,
    );
    if (helpers.length > 0) {
      this.counters.indirectProbes += helpers.length;
      const req: PingReqMessage = { v: MESSAGE_VERSION.pingReq, from: self, target: id, address, timeoutMs: this.o.probeTimeoutMs };
      const answers = await Promise.all(
        helpers.map((h) =>
          this.transport
            .call<{ ok: boolean }>(this.membership.addressOf(h), Routes.pingReq, req, { timeoutMs: this.o.probeTimeoutMs * 2 })
            .then((r) => r?.ok === true)
            .catch(() => false),
        ),
      );
      if (answers.some(Boolean)) return this.alive(id);
    }
    this.missed(id);
  }

  /** Sends one ping; true when answered in time. */
  async ping(address: string, timeoutMs: number, targetId?: string): Promise<boolean> {
    const msg: PingMessage = { v: MESSAGE_VERSION.ping, from: this.membership.selfId, incarnation: this.membership.self.incarnation };
    const t = targetId ? this.membership.get(targetId) : undefined;
    if (t && (t.state === 'suspect' || t.state === 'down')) msg.about = publicInfo(t);
    try {
      const r = await this.transport.call<{ ok: boolean }>(address, Routes.ping, msg, { timeoutMs });
      return r?.ok === true;
    } catch {
      return false;
    }
  }

  private alive(id: string): void {
    this.misses.delete(id);
    this.lastMissMs.delete(id);
    this.membership.heardFrom(id);
  }

  private missed(id: string): void {
    this.counters.misses++;
    const n = (this.misses.get(id) ?? 0) + 1;
    this.misses.set(id, n);
    this.lastMissMs.set(id, this.clock.nowMs());
    const m = this.membership.get(id);
    if (!m) return;
    if (n >= this.o.suspectAfterMisses && (m.state === 'up' || m.state === 'joining' || m.state === 'leaving' || m.state === 'recovering')) {
      this.counters.suspected++;
      this.log.warn({ member: id, misses: n }, 'member missed its probes: suspect');
      this.membership.markState(id, 'suspect');
    } else if (m.state === 'suspect') {
      this.downIfExpired(m);
    }
  }

  /** Suspects that did not refute within the suspicion timeout and missed a probe since are down. */
  private expireSuspicions(): void {
    for (const m of this.membership.members()) if (m.state === 'suspect') this.downIfExpired(m);
  }

  private downIfExpired(m: MemberEntry): void {
    const deadline = m.stateSinceMs + this.o.suspicionTimeoutMs;
    const lastMiss = this.lastMissMs.get(m.id);
    if (lastMiss === undefined || lastMiss < deadline) return;
    this.counters.markedDown++;
    this.log.warn({ member: m.id, suspectForMs: this.clock.nowMs() - m.stateSinceMs }, 'suspect did not refute: down');
    this.membership.markState(m.id, 'down');
  }
}

function shuffle<T>(a: T[]): T[] {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
