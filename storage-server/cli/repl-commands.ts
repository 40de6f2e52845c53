// `ringkv repl`: cross-data-center replication as operators see it — `status` (per node and
// destination data center: queued writes, dropped ones, lag, shipping state, last full sync),
// `fullsync` (a full sync with a data center now, on every live node of the others), and
// `check` (whether every range's replicas agree across all data centers). `--json` for scripts.

import type { Command } from 'commander';
import { InvalidArgumentError } from '../../sdk/errors.js';
import { dcOf, replicationOf } from '../../sdk/membership.js';
import { Routes } from '../../sdk/wire/protocol.js';
import type { FullSyncStats } from '../replication/full-sync.js';
import type { ReplDcStatus } from '../replication/replication.js';
import { adminCall, fetchView, reachFrom, repairCheck } from './admin-commands.js';
import { addTlsOptions, cliTransport, credentialsFrom, EXIT, seedsFrom } from './common.js';
import type { Credentials, TlsFlags } from './common.js';

export interface ReplNodeStatus {
  node: string;
  dc: string;
  repl?: ReplDcStatus[];
  error?: string;
}

/** Every live member's replication status. */
export async function replStatus(seeds: string[], timeoutMs = 3000, creds?: Credentials): Promise<{ replication: Record<string, number>; nodes: ReplNodeStatus[] }> {
  const t = cliTransport(creds, { connectTimeoutMs: timeoutMs });
  try {
    const view = await fetchView(t, seeds);
    const reach = reachFrom(view);
    const nodes = await Promise.all(
      view.members
        .filter((m) => m.state !== 'left')
        .map(async (m): Promise<ReplNodeStatus> => {
          try {
            const st = await t.call<{ repl?: ReplDcStatus[] }>(reach(m), Routes.status, undefined, { timeoutMs });
            return { node: m.id, dc: dcOf(m), repl: st.repl ?? [] };
          } catch (err) {
            return { node: m.id, dc: dcOf(m), error: (err as Error).message };
          }
        }),
    );
    nodes.sort((a, b) => a.dc.localeCompare(b.dc) || a.node.localeCompare(b.node));
    return { replication: { ...replicationOf(view.settings) }, nodes };
  } finally {
    await t.close();
  }
}

/**
 * Runs a full sync with data center `dc` on every live node of the other data centers
 * (only those of `from` when given), in parallel; resolves with each node's figures.
 */
export async function runFullSync(
  seeds: string[],
  dc: string | undefined,
  from: string | undefined,
  timeoutMs = 6 * 3600_000,
  creds?: Credentials,
): Promise<{ nodes: { node: string; dc: string; fullsync?: FullSyncStats[]; error?: string }[] }> {
  const t = cliTransport(creds);
  try {
    const view = await fetchView(t, seeds);
    const dcs = Object.keys(replicationOf(view.settings));
    if (dcs.length < 2) throw new InvalidArgumentError('this cluster has one data center: there is nothing to full-sync with');
    if (dc !== undefined && !dcs.includes(dc)) throw new InvalidArgumentError(`no data center ${dc} (the cluster has ${dcs.join(', ')})`);
    if (from !== undefined && !dcs.includes(from)) throw new InvalidArgumentError(`no data center ${from} (the cluster has ${dcs.join(', ')})`);
    const reach = reachFrom(view);
    const members = view.members.filter((m) => m.state === 'up' && dcOf(m) !== dc && (from === undefined || dcOf(m) === from));
    const nodes = await Promise.all(
      members.map(async (m) => {
        try {
          const r = await adminCall<{ fullsync: FullSyncStats[] }>(t, reach(m), { action: 'fullsync', ...(dc !== undefined ? { dc } : {}) }, timeoutMs);
          return { node: m.id, dc: dcOf(m), fullsync: r.fullsync };
        } catch (err) {
          return { node: m.id, dc: dcOf(m), error: (err as Error).message };
        }
      }),
    );
    return { nodes };
  } finally {
    await t.close();
  }
}

function fmtMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`;
}

export function registerReplCommands(program: Command): void {
  const repl = program.command('repl').description('replication between data centers: status, full sync, check');
  addTlsOptions(repl
    .command('status'))
    .description('per node and destination data center: queued and dropped writes, lag, shipping, last full sync')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--json', 'print one JSON object')
    .action(async (o: { seeds?: string; json?: boolean } & TlsFlags) => {
      const res = await replStatus(seedsFrom(o.seeds), 3000, credentialsFrom(o));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(res)}\n`);
        return;
      }
      process.stdout.write(`replication: ${Object.entries(res.replication).map(([dc, n]) => `${dc}:${n}`).join(', ')}\n`);
      const rows = [['NODE', 'DC', 'TO', 'PENDING', 'DROPPED', 'LAG', 'SHIPPING', 'LAST FULL SYNC OK', 'LAST ERROR']];
      for (const n of res.nodes) {
        if (n.error) {
          rows.push([n.node, n.dc, '?', '?', '?', '?', 'unreachable', '-', n.error.slice(0, 60)]);
          continue;
        }
        for (const r of n.repl ?? []) {
          rows.push([
            n.node,
            n.dc,
            r.dc,
            `${r.pending} (${(r.pendingBytes / 1024).toFixed(0)} KiB)`,
            String(r.dropped),
            fmtMs(r.lagMs),
            r.fullSyncRunning ? `${r.shipper.state}, full sync running` : r.shipper.state,
            r.lastOkFullSyncAt ?? 'never since start',
            r.shipper.lastError?.slice(0, 60) ?? '',
          ]);
        }
      }
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
      if (res.nodes.some((n) => (n.repl ?? []).some((r) => r.dropped > 0))) {
        process.stdout.write('writes were dropped from a queue: they reach the other data center with the next full sync (ringkv repl fullsync)\n');
      }
    });

  addTlsOptions(repl
    .command('fullsync'))
    .description('compare every range with the other data center(s) now and ship only the differing keys')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--dc <name>', 'the data center to synchronize with (default: every other one, from each node)')
    .option('--from <name>', 'run it on the nodes of this data center only (default: every other one)')
    .option('--json', 'print one JSON object')
    .action(async (o: { seeds?: string; dc?: string; from?: string; json?: boolean } & TlsFlags) => {
      const res = await runFullSync(seedsFrom(o.seeds), o.dc, o.from, undefined, credentialsFrom(o));
      if (o.json) process.stdout.write(`${JSON.stringify(res)}\n`);
      else {
        for (const n of res.nodes) {
          if (n.error) {
            process.stdout.write(`${n.node} (${n.dc}): failed: ${n.error}\n`);
            continue;
          }
          for (const f of n.fullsync ?? []) {
            process.stdout.write(
              `${n.node} (${n.dc}) with ${f.dc}: ${f.rangesCompared}/${f.ranges} ranges compared, ${f.rangesDiffering} differing, ` +
                `${f.keysDiffering} keys differed: ${f.keysToLocal} written here, ${f.keysToRemote} shipped there` +
                `${f.errors > 0 ? `, ${f.errors} errors` : ''} (${fmtMs(f.durationMs)})${f.ok ? '' : ' INCOMPLETE'}\n`,
            );
          }
        }
      }
      if (res.nodes.some((n) => n.error || (n.fullsync ?? []).some((f) => !f.ok))) process.exitCode = EXIT.cluster;
    });

  addTlsOptions(repl
    .command('check'))
    .description('exit 0 only when every range has the same Merkle root on every replica of every data center')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--json', 'print one JSON object')
    .action(async (o: { seeds?: string; json?: boolean } & TlsFlags) => {
      const res = await repairCheck(seedsFrom(o.seeds), 30_000, { acrossDcs: true, creds: credentialsFrom(o) });
      const bad = res.ranges.filter((r) => !r.agree).length;
      if (o.json) process.stdout.write(`${JSON.stringify({ allAgree: res.allAgree, ranges: res.ranges.length, differ: bad })}\n`);
      else process.stdout.write(`${res.ranges.length} ranges across data centers: ${res.ranges.length - bad} agree, ${bad} differ or could not be checked\n`);
      if (!res.allAgree) process.exitCode = EXIT.cluster;
    });
}
