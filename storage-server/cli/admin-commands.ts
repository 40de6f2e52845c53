// Operator commands: `repair` (a repair round on every live node, or `--check` whether the
// replicas of every range agree), `cleanup`, `decommission`, `removenode`, `drop-hints`.
// Each prints a line of progress per node and one summary; `--json` for scripts.

import type { Command } from 'commander';
import { HttpTransport } from '../../sdk/transport.js';
import type { MembersView } from '../../sdk/membership.js';
import { Ring } from '../../sdk/ring.js';
import { UnavailableError } from '../../sdk/errors.js';
import type { AdminRequest, MerkleRequest, MerkleResponse } from '../../sdk/wire/protocol.js';
import { PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { inRing } from '../../sdk/membership.js';
import { ringRanges } from '../anti-entropy/token-ranges.js';
import type { TokenRange } from '../anti-entropy/token-ranges.js';
import type { RepairStats } from '../anti-entropy/anti-entropy.js';
import { EXIT, seedsFrom } from './common.js';

/** The first answering seed's membership view. */
export async function fetchView(t: HttpTransport, seeds: string[], timeoutMs = 3000): Promise<MembersView> {
  let lastErr: unknown;
  for (const s of seeds) {
    try {
      return await t.call<MembersView>(s, Routes.members, undefined, { timeoutMs });
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr instanceof Error ? lastErr : new UnavailableError('no seed answered');
}

export interface RangeCheck {
  start: number;
  end: number;
  replicas: string[];
  agree: boolean;
  /** Replicas that could not answer. */
  unreachable: string[];
}

/** Compares the Merkle root of every range across its replicas. */
export async function repairCheck(seeds: string[], timeoutMs = 30_000): Promise<{ ranges: RangeCheck[]; allAgree: boolean }> {
  const t = new HttpTransport();
  try {
    const view = await fetchView(t, seeds);
    const members = view.members.filter(inRing);
    const ring = new Ring(
      members.map((m) => ({ id: m.id, weight: m.weight })),
      { vnodesPerNode: view.settings.vnodesPerNode },
    );
    const ranges = ringRanges(ring, view.settings.replicationFactor);
    const address = new Map(view.members.map((m) => [m.id, m.address]));
    // For each node, the hashes of the spans of every range it replicates.
    const hashes = new Map<string, Map<TokenRange, string>>();
    await Promise.all(
      members.map(async (m) => {
        const mine = ranges.filter((r) => r.replicas.includes(m.id));
        const spans = mine.flatMap((r) => r.spans.map((s) => [s[0], s[1]] as [number, number]));
        try {
          const res = await t.call<MerkleResponse>(address.get(m.id)!, Routes.merkle, { v: PROTOCOL_VERSION, spans } satisfies MerkleRequest, { timeoutMs });
          if (!res.ready) return;
          const per = new Map<TokenRange, string>();
          let i = 0;
          for (const r of mine) {
            per.set(r, r.spans.map(() => res.hashes[i++]!.join(':')).join('|'));
          }
          hashes.set(m.id, per);
        } catch {
          // unreachable: reported per range
        }
      }),
    );
    const out: RangeCheck[] = ranges.map((r) => {
      const unreachable = r.replicas.filter((x) => !hashes.has(x));
      const roots = r.replicas.filter((x) => hashes.has(x)).map((x) => hashes.get(x)!.get(r));
      const agree = unreachable.length === 0 && roots.every((h) => h === roots[0]);
      return { start: r.start, end: r.end, replicas: r.replicas, agree, unreachable };
    });
    return { ranges: out, allAgree: out.every((r) => r.agree) };
  } finally {
    await t.close();
  }
}

/** Sends an admin action to one node. */
export async function adminCall<T>(t: HttpTransport, address: string, req: Omit<AdminRequest, 'v'>, timeoutMs: number): Promise<T> {
  return t.call<T>(address, Routes.admin, { v: PROTOCOL_VERSION, ...req }, { timeoutMs });
}

/** Runs a repair round on every live node in turn; `progress` gets one line per node. */
export async function runRepair(
  seeds: string[],
  progress: (line: string) => void,
  timeoutMs = 30 * 60_000,
): Promise<{ nodes: { node: string; repair?: RepairStats; error?: string }[] }> {
  const t = new HttpTransport();
  try {
    const view = await fetchView(t, seeds);
    const nodes: { node: string; repair?: RepairStats; error?: string }[] = [];
    for (const m of view.members.filter((x) => x.state === 'up')) {
      const started = Date.now();
      try {
        const r = await adminCall<{ repair: RepairStats }>(t, m.address, { action: 'repair' }, timeoutMs);
        nodes.push({ node: m.id, repair: r.repair });
        progress(
          `${m.id}: ${r.repair.ranges} ranges, ${r.repair.rangesDiffering} differing, ${r.repair.hashesCompared} hashes compared, ` +
            `${r.repair.keysExchanged} keys exchanged, ${r.repair.objectsWritten} written (${Date.now() - started} ms)`,
        );
      } catch (err) {
        nodes.push({ node: m.id, error: (err as Error).message });
        progress(`${m.id}: failed: ${(err as Error).message}`);
      }
    }
    return { nodes };
  } finally {
    await t.close();
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export function registerAdminCommands(program: Command): void {
  program
    .command('repair')
    .description('anti-entropy: run a repair round on every live node, or --check whether all replicas agree')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--check', 'only compare Merkle roots per range; exit 0 only when all replicas agree')
    .option('--json', 'print one JSON object')
    .option('--verbose', 'with --check: one line per range, not only the disagreeing ones')
    .action(async (o: { seeds?: string; check?: boolean; json?: boolean; verbose?: boolean }) => {
      const seeds = seedsFrom(o.seeds);
      if (o.check) {
        const res = await repairCheck(seeds);
        if (o.json) process.stdout.write(`${JSON.stringify(res)}\n`);
        else {
          for (const r of res.ranges) {
            if (!r.agree || o.verbose) {
              const why = r.unreachable.length > 0 ? `unreachable: ${r.unreachable.join(',')}` : r.agree ? 'agree' : 'DIFFER';
              process.stdout.write(`(${hex(r.start)}, ${hex(r.end)}]  ${r.replicas.join(',').padEnd(20)} ${why}\n`);
            }
          }
          const bad = res.ranges.filter((r) => !r.agree).length;
          process.stdout.write(`${res.ranges.length} ranges: ${res.ranges.length - bad} agree, ${bad} differ or could not be checked\n`);
        }
        if (!res.allAgree) process.exitCode = EXIT.cluster;
        return;
      }
      const res = await runRepair(seeds, (line) => {
        if (!o.json) process.stdout.write(`${line}\n`);
      });
      const total = res.nodes.reduce(
        (s, n) => ({ hashes: s.hashes + (n.repair?.hashesCompared ?? 0), keys: s.keys + (n.repair?.keysExchanged ?? 0) }),
        { hashes: 0, keys: 0 },
      );
      if (o.json) process.stdout.write(`${JSON.stringify({ ...res, total })}\n`);
      else process.stdout.write(`repair done: ${total.hashes} hashes compared, ${total.keys} keys exchanged\n`);
      if (res.nodes.some((n) => n.error)) process.exitCode = EXIT.cluster;
    });

  program
    .command('drop-hints')
    .description("delete the hints every node holds (for one target with --node): Cassandra's truncatehints")
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--node <id>', 'only hints meant for this node')
    .action(async (o: { seeds?: string; node?: string }) => {
      const t = new HttpTransport();
      try {
        const view = await fetchView(t, seedsFrom(o.seeds));
        for (const m of view.members.filter((x) => x.state === 'up')) {
          const r = await adminCall<{ dropped: number }>(t, m.address, { action: 'drop-hints', ...(o.node ? { node: o.node } : {}) }, 60_000);
          process.stdout.write(`${m.id}: dropped ${r.dropped} hints\n`);
        }
      } finally {
        await t.close();
      }
    });
}

