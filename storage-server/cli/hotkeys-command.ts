// `ringkv hotkeys [--k 20]`: the keys the cluster serves most. Asks every live member for its
// hot-key list (GET /internal/v1/hot-keys, each node's own sliding window: hot-keys.ts) and
// merges them: a key's operations are summed over the nodes that list it (its replicas each
// count the operations they served), with the error bounds summed too. A table for people,
// or `--json`.

import type { Command } from 'commander';
import { InvalidArgumentError } from '../../sdk/errors.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { reachable } from '../../sdk/membership.js';
import type { HotKey } from '../hot-keys.js';
import { fetchView } from './admin-commands.js';
import { addTlsOptions, cliTransport, credentialsFrom, seedsFrom } from './common.js';
import type { Credentials, TlsFlags } from './common.js';

interface NodeHotKeys {
  v: number;
  node: string;
  windowMs: number;
  total: number;
  keys: HotKey[];
}

export interface ClusterHotKey extends HotKey {
  /** Operations per second over the window (summed over nodes). */
  perSec: number;
  /** The nodes that list the key. */
  nodes: string[];
}

export interface ClusterHotKeys {
  nodes: { node: string; windowMs?: number; total?: number; error?: string }[];
  keys: ClusterHotKey[];
}

/** Every live member's hot keys (asked for `k` each, more to merge well), merged; the top `k`. */
export async function clusterHotKeys(seeds: string[], k: number, timeoutMs = 3000, creds?: Credentials): Promise<ClusterHotKeys> {
  const t = cliTransport(creds, { connectTimeoutMs: timeoutMs });
  try {
    const view = await fetchView(t, seeds, timeoutMs);
    const members = view.members.filter(reachable);
    const answers = await Promise.all(
      members.map((m) =>
        t.call<NodeHotKeys>(m.address, `${Routes.hotKeys}?k=${Math.min(256, k * 3)}`, undefined, { timeoutMs }).then(
          (r) => ({ node: m.id, r }),
          (err: unknown) => ({ node: m.id, error: (err as Error).message }),
        ),
      ),
    );
    const merged = new Map<string, ClusterHotKey>();
    for (const a of answers) {
      if (!('r' in a)) continue;
      const secs = Math.max(1, a.r.windowMs) / 1000;
      for (const h of a.r.keys) {
        const m = merged.get(h.key);
        if (m) {
          m.count += h.count;
          m.error += h.error;
          m.reads += h.reads;
          m.writes += h.writes;
          m.perSec += h.count / secs;
          m.nodes.push(a.node);
        } else merged.set(h.key, { ...h, perSec: h.count / secs, nodes: [a.node] });
      }
    }
    const keys = [...merged.values()].sort((x, y) => y.count - x.count || (x.key < y.key ? -1 : 1)).slice(0, k);
    for (const x of keys) x.nodes.sort();
    return {
      nodes: answers.map((a) => ('r' in a ? { node: a.node, windowMs: a.r.windowMs, total: a.r.total } : { node: a.node, error: a.error })).sort((x, y) => x.node.localeCompare(y.node)),
      keys,
    };
  } finally {
    await t.close();
  }
}

export function registerHotKeysCommand(program: Command): void {
  addTlsOptions(program
    .command('hotkeys'))
    .description('the keys the cluster serves most (every node\'s sliding window, merged)')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--k <n>', 'how many keys', '20')
    .option('--json', 'print one JSON object {"nodes": [...], "keys": [...]}')
    .action(async (o: { seeds?: string; k: string; json?: boolean } & TlsFlags) => {
      const k = Number(o.k);
      if (!Number.isInteger(k) || k < 1 || k > 256) throw new InvalidArgumentError('--k must be 1..256');
      const res = await clusterHotKeys(seedsFrom(o.seeds), k, 3000, credentialsFrom(o));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(res)}\n`);
        return;
      }
      const windows = res.nodes.filter((n) => n.windowMs !== undefined).map((n) => Math.round(n.windowMs! / 1000));
      const failed = res.nodes.filter((n) => n.error);
      process.stdout.write(
        `hot keys of ${res.nodes.length - failed.length} node(s), over their last ${windows.length ? `${Math.min(...windows)}-${Math.max(...windows)}` : '?'} s` +
          (failed.length ? `; no answer from ${failed.map((n) => n.node).join(', ')}` : '') +
          '\n',
      );
      const rows = [
        ['RANK', 'KEY', 'OPS/S', 'OPS', '±', 'READS', 'WRITES', 'NODES'],
        ...res.keys.map((h, i) => [String(i + 1), h.display, h.perSec.toFixed(1), String(h.count), String(h.error), String(h.reads), String(h.writes), h.nodes.join(',')]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
    });
}
