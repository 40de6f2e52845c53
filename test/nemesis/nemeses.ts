// The nemeses: faults injected into a running cluster and healed on a seeded schedule
// (3-5 s healthy, 3-5 s fault, repeated for the scenario's duration, healed at the end
// whatever happens). Each nemesis injects one fault at a time; inject/heal are awaited one
// after the other by runSchedule, never concurrently. See README.md for what each does.

import fs from 'node:fs';
import path from 'node:path';
import type { TestCluster } from '../helpers/cluster.js';
import type { SeededRandom } from '../sdk/seeded-random.js';
import type { Firewall } from './net-namespace.js';
import type { WorkerPool } from './worker-pool.js';

export type NemesisName =
  | 'none'
  | 'kill'
  | 'pause'
  | 'partition-isolate'
  | 'partition-halves'
  | 'partition-bridge'
  | 'client-skew'
  | 'server-skew'
  | 'disk-full';

/** What a nemesis needs from the machine; missing it, its scenarios are skipped. */
export type Requirement = 'netns' | 'faketime' | 'tmpfs';

/** Everything a nemesis acts on. */
export interface NemesisContext {
  cluster: TestCluster;
  workers: WorkerPool;
  rng: SeededRandom;
  /** Inside the runner's namespace: DROP rules between addresses. */
  firewall?: Firewall;
  /** Source address of each client worker (partitions place them on sides). */
  workerAddresses: string[];
  /** The worker whose SDK clock is skewed (client-skew). */
  skewedWorker: number;
  /** The node set up for the fault: the one under libfaketime (server-skew) or on the small tmpfs (disk-full). */
  target?: string;
  /** server-skew: libfaketime's timestamp file of the target node. */
  faketimeFile?: string;
  /** disk-full: the tmpfs holding the target's data directory. */
  tmpfsDir?: string;
}

export interface Nemesis {
  name: NemesisName;
  /** Nodes in the cluster it runs against. */
  nodes: number;
  requires?: Requirement;
  /** Injects a fault; returns what it did (one line for the schedule log). */
  inject(ctx: NemesisContext): Promise<string>;
  /** Heals the fault injected last; returns what it did. */
  heal(ctx: NemesisContext): Promise<string>;
}

function runningNodes(ctx: NemesisContext): string[] {
  return ctx.cluster.nodes.filter((n) => ctx.cluster.running(n.id)).map((n) => n.id);
}

/** kill -9 of a random node; heal: restart it on the same port and data. */
function killNemesis(): Nemesis {
  let victim: string | undefined;
  return {
    name: 'kill',
    nodes: 3,
    async inject(ctx) {
      victim = ctx.rng.pick(runningNodes(ctx));
      await ctx.cluster.kill(victim);
      return `kill -9 ${victim}`;
    },
    async heal(ctx) {
      if (!victim) return 'nothing to heal';
      const v = victim;
      victim = undefined;
      await ctx.cluster.restart(v);
      return `restarted ${v}`;
    },
  };
}

/** SIGSTOP of a random node; heal: SIGCONT. */
function pauseNemesis(): Nemesis {
  let victim: string | undefined;
  return {
    name: 'pause',
    nodes: 3,
    async inject(ctx) {
      victim = ctx.rng.pick(runningNodes(ctx));
      ctx.cluster.pause(victim);
      return `SIGSTOP ${victim}`;
    },
    async heal(ctx) {
      if (!victim) return 'nothing to heal';
      ctx.cluster.resume(victim);
      const v = victim;
      victim = undefined;
      return `SIGCONT ${v}`;
    },
  };
}

/**
 * A partition: `sides` lists which node ids each side holds; nodes of different sides
 * cannot reach each other unless one of them is in `bridge` (seen by both). Client workers:
 * worker 0 can reach only the first side (with the bridge), worker 1 only the last side
 * (with the bridge), and the others every node (a client between both sides).
 */
export interface PartitionPlan {
  sides: string[][];
  bridge: string[];
}

/** The address pairs a plan blocks: node-node across sides, and client-node outside a client's side. */
export function blockedPairs(plan: PartitionPlan, nodeAddress: (id: string) => string, workerAddresses: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  const sideOf = new Map<string, number>();
  plan.sides.forEach((s, i) => s.forEach((id) => sideOf.set(id, i)));
  const ids = [...sideOf.keys()];
  for (let i = 0; i < ids.length; i++) {
    for (let j = i + 1; j < ids.length; j++) {
      if (sideOf.get(ids[i]!) !== sideOf.get(ids[j]!)) pairs.push([nodeAddress(ids[i]!), nodeAddress(ids[j]!)]);
    }
  }
  const first = plan.sides[0] ?? [];
  const last = plan.sides[plan.sides.length - 1] ?? [];
  workerAddresses.forEach((w, i) => {
    if (i > 1) return;
    const visible = new Set([...(i === 0 ? first : last), ...plan.bridge]);
    for (const id of ids) if (!visible.has(id)) pairs.push([w, nodeAddress(id)]);
  });
  return pairs;
}

function partitionNemesis(name: 'partition-isolate' | 'partition-halves' | 'partition-bridge', plan: (ids: string[], rng: SeededRandom) => PartitionPlan): Nemesis {
  return {
    name,
    nodes: 5,
    requires: 'netns',
    async inject(ctx) {
      if (!ctx.firewall) throw new Error('partitions need the runner\'s network namespace');
      const ids = ctx.cluster.nodes.map((n) => n.id);
      const p = plan(ids, ctx.rng);
      const addr = (id: string) => ctx.cluster.node(id).host;
      const pairs = blockedPairs(p, addr, ctx.workerAddresses);
      await ctx.firewall.block(pairs);
      const bridge = p.bridge.length > 0 ? ` via ${p.bridge.join(',')}` : '';
      return `partition ${p.sides.map((s) => `{${s.join(',')}}`).join(' | ')}${bridge} (w0 on the first side, w1 on the last)`;
    },
    async heal(ctx) {
      await ctx.firewall?.heal();
      return 'healed the partition';
    },
  };
}

function shuffled<T>(xs: readonly T[], rng: SeededRandom): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** 100 ms to 30 s, log-uniform, ahead or behind. */
export function randomSkewMs(rng: SeededRandom): number {
  const magnitude = Math.round(100 * Math.pow(300, rng.next()));
  return rng.chance(0.5) ? magnitude : -magnitude;
}

function fmtSkew(ms: number): string {
  return `${ms >= 0 ? '+' : ''}${(ms / 1000).toFixed(3)} s`;
}

/** The SDK clock of one client worker is moved; heal: back to 0. */
function clientSkewNemesis(): Nemesis {
  return {
    name: 'client-skew',
    nodes: 3,
    async inject(ctx) {
      const ms = randomSkewMs(ctx.rng);
      ctx.workers.skew(ctx.skewedWorker, ms);
      return `client worker w${ctx.skewedWorker} clock ${fmtSkew(ms)}`;
    },
    async heal(ctx) {
      ctx.workers.skew(ctx.skewedWorker, 0);
      return `client worker w${ctx.skewedWorker} clock back to +0`;
    },
  };
}

/** libfaketime's offset format: "+1.250s", "-30.000s". */
export function faketimeOffset(ms: number): string {
  return `${ms >= 0 ? '+' : '-'}${(Math.abs(ms) / 1000).toFixed(3)}s`;
}

/** The wall clock of one server (under libfaketime) is moved; heal: back to +0. Takes effect within a second. */
function serverSkewNemesis(): Nemesis {
  return {
    name: 'server-skew',
    nodes: 3,
    requires: 'faketime',
    async inject(ctx) {
      const ms = randomSkewMs(ctx.rng);
      fs.writeFileSync(ctx.faketimeFile!, `${faketimeOffset(ms)}\n`);
      return `node ${ctx.target} clock ${fmtSkew(ms)}`;
    },
    async heal(ctx) {
      fs.writeFileSync(ctx.faketimeFile!, '+0\n');
      return `node ${ctx.target} clock back to +0`;
    },
  };
}

/** Name of the filler file in the disk-full node's tmpfs. */
const FILLER = 'filler';

/** Fills a file system with `file` until ENOSPC (bounded by `maxBytes`); returns bytes written. */
export function fillUp(file: string, maxBytes: number): number {
  const fd = fs.openSync(file, 'a');
  let written = 0;
  try {
    for (const chunk of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (let i = 0; i < Math.ceil(maxBytes / chunk) && written < maxBytes; i++) {
        try {
          written += fs.writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

/** One node's data directory is on a small tmpfs; the fault fills what is left; heal: delete the filler. */
function diskFullNemesis(): Nemesis {
  return {
    name: 'disk-full',
    nodes: 3,
    requires: 'tmpfs',
    async inject(ctx) {
      const n = fillUp(path.join(ctx.tmpfsDir!, FILLER), 256 << 20);
      return `filled node ${ctx.target}'s disk (${(n / (1 << 20)).toFixed(1)} MiB filler)`;
    },
    async heal(ctx) {
      fs.rmSync(path.join(ctx.tmpfsDir!, FILLER), { force: true });
      return `deleted node ${ctx.target}'s filler`;
    },
  };
}

/** No fault at all (a baseline). */
function noNemesis(): Nemesis {
  return { name: 'none', nodes: 3, inject: async () => 'no fault', heal: async () => 'nothing to heal' };
}

/** A fresh instance of the named nemesis (they keep per-run state: the current victim). */
export function makeNemesis(name: NemesisName): Nemesis {
  switch (name) {
    case 'none':
      return noNemesis();
    case 'kill':
      return killNemesis();
    case 'pause':
      return pauseNemesis();
    case 'partition-isolate':
      // One node alone; the four others together.
      return partitionNemesis(name, (ids, rng) => {
        const s = shuffled(ids, rng);
        return { sides: [[s[0]!], s.slice(1)], bridge: [] };
      });
    case 'partition-halves':
      // A minority of two and a majority of three.
      return partitionNemesis(name, (ids, rng) => {
        const s = shuffled(ids, rng);
        return { sides: [s.slice(0, 2), s.slice(2)], bridge: [] };
      });
    case 'partition-bridge':
      // A, B | C | D, E: the two ends cannot see each other, the bridge C sees all.
      return partitionNemesis(name, (ids, rng) => {
        const s = shuffled(ids, rng);
        return { sides: [s.slice(0, 2), s.slice(3)], bridge: [s[2]!] };
      });
    case 'client-skew':
      return clientSkewNemesis();
    case 'server-skew':
      return serverSkewNemesis();
    case 'disk-full':
      return diskFullNemesis();
  }
}

/** One step of a schedule, for the scenario's log. */
export interface ScheduleEvent {
  atMs: number;
  what: string;
}

/**
 * Alternates healthy and faulty periods (each uniform in [minPhaseMs, maxPhaseMs]) for
 * `durationMs`, starting healthy, and heals at the end (also when aborted or on error).
 */
export async function runSchedule(
  nem: Nemesis,
  ctx: NemesisContext,
  durationMs: number,
  o: { minPhaseMs?: number; maxPhaseMs?: number; aborted?: () => boolean; now?: () => number } = {},
): Promise<ScheduleEvent[]> {
  const minMs = o.minPhaseMs ?? 3000;
  const maxMs = o.maxPhaseMs ?? 5000;
  const now = o.now ?? (() => performance.now());
  const started = now();
  const end = started + durationMs;
  const events: ScheduleEvent[] = [];
  const sleepUntil = async (t: number) => {
    while (now() < t && !o.aborted?.()) await new Promise((r) => setTimeout(r, Math.min(200, Math.max(1, t - now()))));
  };
  let faulty = false;
  try {
    for (let phase = 0; phase < 1000 && now() < end && !o.aborted?.(); phase++) {
      const len = minMs + ctx.rng.next() * (maxMs - minMs);
      if (phase % 2 === 1 && now() + 1000 < end) {
        faulty = true;
        events.push({ atMs: Math.round(now() - started), what: await nem.inject(ctx) });
      }
      await sleepUntil(Math.min(end, now() + len));
      if (faulty) {
        faulty = false;
        events.push({ atMs: Math.round(now() - started), what: await nem.heal(ctx) });
      }
    }
  } finally {
    if (faulty) events.push({ atMs: Math.round(now() - started), what: await nem.heal(ctx) });
  }
  return events;
}
