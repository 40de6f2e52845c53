// Operator commands: `repair` (a repair round on every live node, or `--check` whether the
// replicas of every range agree), `cleanup`, `decommission`, `removenode`, `drop-hints`,
// `compact`.
// Each prints a line of progress per node and one summary; `--json` for scripts.

import type { Command } from 'commander';
import { HttpTransport } from '../../sdk/transport.js';
import type { MemberInfo, MembersView } from '../../sdk/membership.js';
import { addressFrom, dcOf, replicationOf } from '../../sdk/membership.js';
import { Ring } from '../../sdk/ring.js';
import { InvalidArgumentError, UnavailableError } from '../../sdk/errors.js';
import type { AdminRequest, MerkleRequest, MerkleResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { inRing } from '../../sdk/membership.js';
import { ringRanges } from '../anti-entropy/token-ranges.js';
import type { TokenRange } from '../anti-entropy/token-ranges.js';
import type { RepairStats } from '../anti-entropy/anti-entropy.js';
import { addTlsOptions, cliTransport, credentialsFrom, EXIT, seedsFrom } from './common.js';
import type { Credentials, TlsFlags } from './common.js';

/** The first answering seed's membership view (which then tells `t` what each member accepts). */
export async function fetchView(t: HttpTransport, seeds: string[], timeoutMs = 3000): Promise<MembersView> {
  let lastErr: unknown;
  for (const s of seeds) {
    try {
      const view = await t.call<MembersView>(s, Routes.members, undefined, { timeoutMs });
      const modes = new Map<string, 'off' | 'transitional' | 'required'>();
      for (const m of view.members) for (const a of [m.address, m.remoteAddress]) if (a) modes.set(a, m.tls ?? 'off');
      t.setPeerTlsMode((address) => modes.get(address));
      return view;
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr instanceof Error ? lastErr : new UnavailableError('no seed answered');
}

/**
 * How the CLI reaches the members of a view: as the answering node does (members of its data
 * center at their address, the others at their remoteAddress) — the seeds are given in the
 * operator's data center.
 */
export function reachFrom(view: MembersView): (m: MemberInfo) => string {
  const self = view.members.find((x) => x.id === view.self);
  const dc = self ? dcOf(self) : undefined;
  return (m) => addressFrom(m, dc);
}

/** The ring of a view's members (placement settings included). */
export function ringOfView(view: MembersView): Ring {
  return new Ring(
    view.members.filter(inRing).map((m) => ({ id: m.id, weight: m.weight, ...(m.dc !== undefined ? { dc: m.dc } : {}), ...(m.rack !== undefined ? { rack: m.rack } : {}) })),
    { vnodesPerNode: view.settings.vnodesPerNode, replication: replicationOf(view.settings) },
  );
}

export interface RangeCheck {
  start: number;
  end: number;
  replicas: string[];
  agree: boolean;
  /** Replicas that could not answer. */
  unreachable: string[];
}

/**
 * Compares the Merkle root of every range across its replicas: within each data center (what
 * anti-entropy keeps in step), or with `acrossDcs` across every replica of every data center
 * (what cross-DC replication and full sync converge to).
 */
export async function repairCheck(
  seeds: string[],
  timeoutMs = 30_000,
  opts: { acrossDcs?: boolean; creds?: Credentials } = {},
): Promise<{ ranges: RangeCheck[]; allAgree: boolean }> {
  const t = cliTransport(opts.creds);
  try {
    const view = await fetchView(t, seeds);
    const members = view.members.filter(inRing);
    const ring = ringOfView(view);
    const all = ringRanges(ring);
    // One entry per range and data center (or per range, across them).
    const ranges: TokenRange[] = opts.acrossDcs
      ? all
      : all.flatMap((r) => ring.dataCenters.map((dc) => ({ ...r, replicas: [...ring.replicasInDcForToken(r.end, dc)] })).filter((x) => x.replicas.length > 0));
    const reach = reachFrom(view);
    const address = new Map(view.members.map((m) => [m.id, reach(m)]));
    // For each node, the hashes of the spans of every range it replicates.
    const hashes = new Map<string, Map<TokenRange, string>>();
    let refused: unknown;
    await Promise.all(
      members.map(async (m) => {
        const mine = ranges.filter((r) => r.replicas.includes(m.id));
        const spans = mine.flatMap((r) => r.spans.map((s) => [s[0], s[1]] as [number, number]));
        try {
          const res = await t.call<MerkleResponse>(address.get(m.id)!, Routes.merkle, { v: MESSAGE_VERSION.merkle, spans } satisfies MerkleRequest, { timeoutMs });
          if (!res.ready) return;
          const per = new Map<TokenRange, string>();
          let i = 0;
          for (const r of mine) {
            per.set(r, r.spans.map(() => res.hashes[i++]!.join(':')).join('|'));
          }
          hashes.set(m.id, per);
        } catch (err) {
          // A refusal for credentials is the same on every node: say it, rather than "unreachable".
          const code = (err as { code?: string }).code;
          if (code === 'UNAUTHENTICATED' || code === 'PERMISSION_DENIED') refused ??= err;
          // else unreachable: reported per range
        }
      }),
    );
    if (refused) throw refused;
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
  return t.call<T>(address, Routes.admin, { v: MESSAGE_VERSION.admin, ...req }, { timeoutMs });
}

/** Runs a repair round on every live node in turn; `progress` gets one line per node. */
export async function runRepair(
  seeds: string[],
  progress: (line: string) => void,
  timeoutMs = 30 * 60_000,
  creds?: Credentials,
): Promise<{ nodes: { node: string; repair?: RepairStats; error?: string }[] }> {
  const t = cliTransport(creds);
  try {
    const view = await fetchView(t, seeds);
    const reach = reachFrom(view);
    const nodes: { node: string; repair?: RepairStats; error?: string }[] = [];
    for (const m of view.members.filter((x) => x.state === 'up')) {
      const started = Date.now();
      try {
        const r = await withProgress(t, reach(m), adminCall<{ repair: RepairStats }>(t, reach(m), { action: 'repair' }, timeoutMs), (st) => {
          const cur = st.repairing as RepairStats | null;
          if (!cur) return undefined;
          const secs = Math.max(0.001, (Date.now() - Date.parse(cur.startedAt)) / 1000);
          return `${m.id}: ${cur.phase}: ${cur.hashesCompared} hashes compared (${Math.round(cur.hashesCompared / secs)}/s), ${cur.leavesCompared} leaves, ${cur.keysExchanged} keys to exchange`;
        });
        nodes.push({ node: m.id, repair: r.repair });
        progress(
          `${m.id}: ${r.repair.ranges} ranges, ${r.repair.rangesDiffering} differing, ${r.repair.hashesCompared} hashes compared, ` +
            `${r.repair.keysExchanged} keys exchanged, ${r.repair.objectsWritten} written (${Date.now() - started} ms)` +
            (r.repair.peersSkipped.length > 0 ? `; skipped unreachable ${r.repair.peersSkipped.join(', ')}` : ''),
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
  addTlsOptions(program
    .command('repair'))
    .description('anti-entropy: run a repair round on every live node, or --check whether all replicas agree')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--check', 'only compare Merkle roots per range; exit 0 only when all replicas agree')
    .option('--json', 'print one JSON object')
    .option('--verbose', 'with --check: one line per range, not only the disagreeing ones')
    .action(async (o: { seeds?: string; check?: boolean; json?: boolean; verbose?: boolean } & TlsFlags) => {
      const seeds = seedsFrom(o.seeds);
      const creds = credentialsFrom(o);
      if (o.check) {
        const res = await repairCheck(seeds, 30_000, { creds });
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
      const res = await runRepair(
        seeds,
        (line) => {
          if (!o.json) process.stdout.write(`${line}\n`);
        },
        undefined,
        creds,
      );
      const total = res.nodes.reduce(
        (s, n) => ({ hashes: s.hashes + (n.repair?.hashesCompared ?? 0), keys: s.keys + (n.repair?.keysExchanged ?? 0) }),
        { hashes: 0, keys: 0 },
      );
      if (o.json) process.stdout.write(`${JSON.stringify({ ...res, total })}\n`);
      else process.stdout.write(`repair done: ${total.hashes} hashes compared, ${total.keys} keys exchanged\n`);
      if (res.nodes.some((n) => n.error)) process.exitCode = EXIT.cluster;
    });

  addTlsOptions(program
    .command('compact'))
    .description("a full compaction of every live node's engine (or --node): drops shadowed versions, old tombstones, and corrupt blocks whose keys were repaired")
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--node <id>', 'only this node')
    .action(async (o: { seeds?: string; node?: string } & TlsFlags) => {
      const t = cliTransport(credentialsFrom(o));
      try {
        const view = await fetchView(t, seedsFrom(o.seeds));
        const targets = view.members.filter((x) => x.state === 'up' && (!o.node || x.id === o.node));
        if (o.node && targets.length === 0) throw new InvalidArgumentError(`no live member ${o.node}`);
        for (const m of targets) {
          try {
            const r = await adminCall<{ tablesBefore: number; tables: number; corruptBlocksDropped: number }>(t, m.address, { action: 'compact' }, 30 * 60_000);
            process.stdout.write(`${m.id}: ${r.tablesBefore} tables -> ${r.tables}${r.corruptBlocksDropped > 0 ? ` (${r.corruptBlocksDropped} repaired corrupt blocks dropped since start)` : ''}\n`);
          } catch (err) {
            process.stdout.write(`${m.id}: failed: ${(err as Error).message}\n`);
            process.exitCode = EXIT.cluster;
          }
        }
      } finally {
        await t.close();
      }
    });

  addTlsOptions(program
    .command('drop-hints'))
    .description("delete the hints every node holds (for one target with --node): Cassandra's truncatehints")
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--node <id>', 'only hints meant for this node')
    .action(async (o: { seeds?: string; node?: string } & TlsFlags) => {
      const t = cliTransport(credentialsFrom(o));
      try {
        const view = await fetchView(t, seedsFrom(o.seeds));
        for (const m of view.members.filter((x) => x.state === 'up')) {
          const r = await adminCall<{ dropped: number }>(t, reachFrom(view)(m), { action: 'drop-hints', ...(o.node ? { node: o.node } : {}) }, 60_000);
          process.stdout.write(`${m.id}: dropped ${r.dropped} hints\n`);
        }
      } finally {
        await t.close();
      }
    });
}


/** Prints a progress line per second from a node's status while `work` runs. */
async function withProgress<T>(t: HttpTransport, address: string, work: Promise<T>, line: (s: Record<string, unknown>) => string | undefined): Promise<T> {
  let done = false;
  const poll = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 1000));
      if (done) break;
      try {
        const st = await t.call<Record<string, unknown>>(address, Routes.status, undefined, { timeoutMs: 2000 });
        const l = line(st);
        if (l && !done) process.stderr.write(`${l}\n`);
      } catch {
        // the node may be busy; try again next second
      }
    }
  })();
  try {
    return await work;
  } finally {
    done = true;
    await poll;
  }
}

function movingLine(st: Record<string, unknown>): string | undefined {
  const m = st.moving as { op: string; startedAt: string; stats: { keys: number; bytes: number; ranges: number } } | null;
  if (!m) return undefined;
  const secs = Math.max(0.001, (Date.now() - Date.parse(m.startedAt)) / 1000);
  return `${m.op}: ${m.stats.keys} keys, ${(m.stats.bytes / 1048576).toFixed(1)} MiB streamed (${Math.round(m.stats.keys / secs)} keys/s)`;
}

export function registerMembershipCommands(program: Command): void {
  addTlsOptions(program
    .command('decommission'))
    .description('stream the ranges of a live node to their new owners, then take it out of the ring')
    .argument('<node>', 'node id')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .action(async (node: string, o: { seeds?: string } & TlsFlags) => {
      const t = cliTransport(credentialsFrom(o));
      try {
        const view = await fetchView(t, seedsFrom(o.seeds));
        const m = view.members.find((x) => x.id === node);
        if (!m) throw new InvalidArgumentError(`no member ${node}`);
        const address = reachFrom(view)(m);
        process.stderr.write(`decommissioning ${node} (${address})...\n`);
        const r = await withProgress(t, address, adminCall<{ decommission: { ranges: number; keys: number; bytes: number; durationMs: number; repairedKeys: number } }>(t, address, { action: 'decommission' }, 6 * 3600_000), movingLine);
        const d = r.decommission;
        process.stdout.write(
          `${node} left the ring: ${d.ranges} ranges, ${d.keys} keys (${(d.bytes / 1048576).toFixed(1)} MiB) streamed in ${d.durationMs} ms; ` +
            `${d.repairedKeys} keys fixed by the final repair. Stop its process now.\n`,
        );
      } finally {
        await t.close();
      }
    });

  addTlsOptions(program
    .command('removenode'))
    .description('take a dead node out of the ring for good; its ranges re-replicate to the remaining nodes')
    .argument('<node>', 'node id (must be down)')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .action(async (node: string, o: { seeds?: string } & TlsFlags) => {
      const seeds = seedsFrom(o.seeds);
      const creds = credentialsFrom(o);
      const t = cliTransport(creds);
      try {
        const view = await fetchView(t, seeds);
        const coordinator = view.members.find((x) => x.state === 'up' && x.id !== node);
        if (!coordinator) throw new UnavailableError('no live node to coordinate the removal');
        const reach = reachFrom(view);
        await adminCall(t, reach(coordinator), { action: 'removenode', node }, 10_000);
        // Wait until every live node sees it gone, so their rings agree before repairing.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const views = await Promise.all(
            view.members.filter((x) => x.state === 'up' && x.id !== node).map((x) => t.call<MembersView>(reach(x), Routes.members, undefined, { timeoutMs: 2000 }).catch(() => undefined)),
          );
          if (views.every((v) => v?.members.find((x) => x.id === node)?.state === 'left')) break;
          if (Date.now() > deadline) throw new UnavailableError(`not every node sees ${node} as left yet`);
          await new Promise((r) => setTimeout(r, 200));
        }
        process.stderr.write(`${node} is out of the ring; re-replicating its ranges...\n`);
      } finally {
        await t.close();
      }
      const res = await runRepair(seeds, (line) => process.stderr.write(`${line}\n`), undefined, creds);
      const keys = res.nodes.reduce((s, n) => s + (n.repair?.keysExchanged ?? 0), 0);
      process.stdout.write(`${node} removed; ${keys} keys re-replicated\n`);
      if (res.nodes.some((n) => n.error)) process.exitCode = EXIT.cluster;
    });

  addTlsOptions(program
    .command('cleanup'))
    .description('on every live node, drop the data of ranges it no longer owns (after joins and leaves)')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .action(async (o: { seeds?: string } & TlsFlags) => {
      const t = cliTransport(credentialsFrom(o));
      try {
        const view = await fetchView(t, seedsFrom(o.seeds));
        let total = 0;
        for (const m of view.members.filter((x) => x.state === 'up')) {
          const r = await adminCall<{ cleanup: { scanned: number; dropped: number } }>(t, reachFrom(view)(m), { action: 'cleanup' }, 3600_000);
          total += r.cleanup.dropped;
          process.stdout.write(`${m.id}: dropped ${r.cleanup.dropped} keys it no longer owns\n`);
        }
        process.stdout.write(`cleanup done: ${total} keys dropped\n`);
      } finally {
        await t.close();
      }
    });
}
