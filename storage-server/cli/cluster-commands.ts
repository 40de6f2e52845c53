// `ringkv cluster up` (a local development cluster of N server processes — or of D data
// centers of N each — logs to the terminal, Ctrl-C stops it cleanly; `--tls` makes
// certificates when missing and runs it with TLS required; `--auth` adds authentication and
// makes the first admin) and `ringkv status` (each member's data center, rack, state,
// address, TLS mode, keys, pending hints and when it was last heard from; `--json` for
// scripts).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { InvalidArgumentError, UnavailableError } from '../../sdk/errors.js';
import type { MembersView } from '../../sdk/membership.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { DEFAULT_DC, dcOf } from '../../sdk/membership.js';
import { ringRanges } from '../anti-entropy/token-ranges.js';
import { addTlsOptions, cliTransport, credentialsFrom, seedsFrom } from './common.js';
import type { Credentials, TlsFlags } from './common.js';
import { certFiles, ensureCerts } from '../tls/cert-authority.js';
import { reachFrom, ringOfView } from './admin-commands.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Turns one pino JSON line into "n1 | 12:00:00 INFO message key=value". */
export function formatLogLine(prefix: string, line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${prefix} | ${line}`;
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 19) : '';
  const level = LEVELS[o.level as number] ?? String(o.level ?? '');
  const { msg, time: _t, level: _l, pid: _p, hostname: _h, node: _n, ...rest } = o;
  const extras = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${prefix} | ${time} ${level.padEnd(5)} ${String(msg ?? '')}${extras ? ` ${extras}` : ''}`;
}

export interface LocalClusterOptions {
  /** Nodes in all; with `dcs`, split evenly between the data centers. */
  nodes: number;
  basePort: number;
  host: string;
  dataDir: string;
  logLevel: string;
  extraArgs?: string[];
  /** Extra CLI args of node `id` (its certificate, say). */
  nodeArgs?: (id: string) => string[];
  /** Data centers `dc1`..`dcN` (default: one, unnamed); each holds min(3, its nodes) replicas. */
  dcs?: number;
}

/** The data center of node `i` (0-based) of a local cluster, undefined for a cluster of one. */
export function localDcOf(o: Pick<LocalClusterOptions, 'nodes' | 'dcs'>, i: number): string | undefined {
  if (!o.dcs || o.dcs < 2) return undefined;
  return `dc${Math.floor(i / (o.nodes / o.dcs)) + 1}`;
}

/** Starts `nodes` server processes; resolves once every one reported ready. */
export async function startLocalCluster(o: LocalClusterOptions, onLine: (line: string) => void): Promise<ChildProcess[]> {
  const addresses = Array.from({ length: o.nodes }, (_, i) => `${o.host}:${o.basePort + i}`);
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  const dcs = o.dcs ?? 1;
  const replication = Array.from({ length: dcs }, (_, d) => `dc${d + 1}:${Math.min(3, o.nodes / dcs)}`).join(',');
  for (let i = 0; i < o.nodes; i++) {
    const id = `n${i + 1}`;
    const dc = localDcOf(o, i);
    const args = [
      path.join(here, 'ringkv.js'),
      'server',
      '--id',
      id,
      '--host',
      o.host,
      '--port',
      String(o.basePort + i),
      '--data',
      path.join(o.dataDir, id),
      '--seeds',
      addresses.filter((_, j) => j !== i).join(','),
      '--log-level',
      o.logLevel,
      ...(dc !== undefined ? ['--dc', dc, '--replication', replication] : []),
      ...(o.extraArgs ?? []),
      ...(o.nodeArgs?.(id) ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    children.push(child);
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (line) => onLine(formatLogLine(id, line)));
    }
    ready.push(
      new Promise<void>((resolve, reject) => {
        child.on('message', (m: { type?: string }) => {
          if (m?.type === 'ready') resolve();
        });
        child.once('exit', (code) => reject(new UnavailableError(`node ${id} exited with code ${code} before it was ready`)));
      }),
    );
  }
  try {
    await Promise.all(ready);
  } catch (err) {
    await stopChildren(children);
    throw err;
  }
  return children;
}

/** SIGTERM every child and wait for them to exit (SIGKILL after `graceMs`). */
export async function stopChildren(children: ChildProcess[], graceMs = 15_000): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
          c.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}

/**
 * The first admin of a local cluster with authentication: `auth init` with node n1's
 * certificate (the local admin secret), its token written to `tokenFile` (mode 0600). A
 * cluster started again on the same data keeps its users and the file.
 */
async function makeFirstAdmin(seed: string, certDir: string, tokenFile: string): Promise<void> {
  const t = cliTransport({ tls: { ca: fs.readFileSync(certFiles.caCert(certDir)), cert: fs.readFileSync(certFiles.nodeCert(certDir, 'n1')), key: fs.readFileSync(certFiles.nodeKey(certDir, 'n1')) } });
  try {
    const r = await t.call<{ token: string }>(seed, Routes.authAdmin, { v: MESSAGE_VERSION.authAdmin, action: 'init', name: 'admin' }, { timeoutMs: 10_000 });
    fs.writeFileSync(tokenFile, `${r.token}\n`, { mode: 0o600 });
  } catch (err) {
    if ((err as { code?: string }).code !== 'INVALID_ARGUMENT') throw err;
    process.stdout.write(`ringkv: the cluster has its admin already (${(err as Error).message.split(':')[0]}); its token is in ${tokenFile} if it was kept\n`);
  } finally {
    await t.close();
  }
}

interface NodeStatus {
  id: string;
  address: string;
  dc: string;
  rack?: string;
  state: string;
  incarnation: number;
  /** What the node accepts: off, transitional or required (storage-server/tls/README.md). */
  tls: string;
  /** Share of the data this node stores (N replicas counted, like nodetool's effective ownership). */
  ownership?: number;
  /** Bytes of data on disk and in memtables. */
  loadBytes?: number;
  keys?: number;
  hintsPending?: number;
  uptimeSec?: number;
  lastHeard?: string;
  /**
   * The engine's state (ok, degraded-retrying, recovering, failed), with what it retries
   * and its last error when not ok: `degraded-retrying (wal ENOSPC, 12 retries)`.
   */
  engine?: string;
  /** Quarantined (corrupt, not yet repaired) ranges of the node. */
  suspectRanges?: number;
  reachable: boolean;
  error?: string;
}

/** One word (and, when not ok, why) for an engine health from a node's status. */
function engineSummary(h: { state?: string; retrying?: string[]; retries?: number; lastError?: { errno?: string; code?: string } | null } | undefined): string | undefined {
  if (!h?.state) return undefined;
  if (h.state === 'ok') return 'ok';
  const why = [h.retrying?.join('+'), h.lastError?.errno ?? h.lastError?.code].filter(Boolean).join(' ');
  return `${h.state} (${why}${h.retries ? `, ${h.retries} retries` : ''})`;
}

/** Collects the status of every member through the given seeds. */
export async function clusterStatus(seeds: string[], timeoutMs = 2000, creds?: Credentials): Promise<{ nodes: NodeStatus[]; from: string }> {
  const t = cliTransport(creds, { connectTimeoutMs: timeoutMs });
  try {
    let view: MembersView | undefined;
    let from = '';
    let lastErr: unknown;
    for (const s of seeds) {
      try {
        view = await t.call<MembersView>(s, Routes.members, undefined, { timeoutMs });
        from = s;
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (!view) throw lastErr instanceof Error ? lastErr : new UnavailableError('no seed answered');
    const modes = new Map<string, 'off' | 'transitional' | 'required'>();
    for (const m of view.members) for (const a of [m.address, m.remoteAddress]) if (a) modes.set(a, m.tls ?? 'off');
    t.setPeerTlsMode((address) => modes.get(address));
    // The answering node's own record of when it last heard from each member.
    let heard: Record<string, number> = {};
    try {
      const st = await t.call<{ members?: { id: string; lastHeardMs: number }[] }>(from, Routes.status, undefined, { timeoutMs });
      heard = Object.fromEntries((st.members ?? []).map((m) => [m.id, m.lastHeardMs]));
    } catch {
      heard = {};
    }
    // Effective ownership: the share of the token space each member stores a replica of
    // (within its data center, each of which holds every key).
    const ring = ringOfView(view);
    const reach = reachFrom(view);
    const owned = new Map<string, number>();
    if (ring.members.length > 0) {
      for (const r of ringRanges(ring)) {
        const w = r.spans.reduce((a, x) => a + (x[1] - x[0] + 1), 0) / 2 ** 32;
        for (const x of r.replicas) owned.set(x, (owned.get(x) ?? 0) + w);
      }
    }
    const nodes = await Promise.all(
      view.members.map(async (m): Promise<NodeStatus> => {
        const base: NodeStatus = { id: m.id, address: m.address, dc: dcOf(m), state: m.state, incarnation: m.incarnation, tls: m.tls ?? 'off', reachable: false };
        if (m.rack !== undefined) base.rack = m.rack;
        if (owned.has(m.id)) base.ownership = owned.get(m.id)!;
        if (heard[m.id]) base.lastHeard = new Date(heard[m.id]!).toISOString();
        try {
          const st = await t.call<Record<string, unknown>>(reach(m), Routes.status, undefined, { timeoutMs });
          return {
            ...base,
            keys: st.keys as number,
            loadBytes: (st.tableBytes as number) + (st.memtableBytes as number),
            hintsPending: st.hintsPending as number,
            uptimeSec: st.uptimeSec as number,
            ...(engineSummary(st.engine as never) ? { engine: engineSummary(st.engine as never)! } : {}),
            ...(Array.isArray(st.quarantine) ? { suspectRanges: (st.quarantine as { repaired: boolean }[]).filter((q) => !q.repaired).length } : {}),
            reachable: true,
          };
        } catch (err) {
          return { ...base, error: (err as Error).message };
        }
      }),
    );
    nodes.sort((a, b) => a.dc.localeCompare(b.dc) || a.id.localeCompare(b.id));
    return { nodes, from };
  } finally {
    await t.close();
  }
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function fmtAgo(iso: string | undefined): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 1 ? 'now' : `${s}s ago`;
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('local development clusters');
  cluster
    .command('up')
    .description('start a local cluster of N nodes, or of D data centers of N nodes each (Ctrl-C stops it cleanly)')
    .option('--nodes <n>', 'number of nodes (per data center with --dcs)', '3')
    .option('--dcs <d>', 'data centers dc1..dcD, each holding min(3, N) replicas of every key', '1')
    .option('--base-port <port>', 'port of the first node; the others follow', '7001')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--data <dir>', 'data directory (one folder per node)', './data')
    .option('--log-level <level>', 'server log level', 'info')
    .option('--tls', 'run with TLS required: certificates (CA, node-<id>, client-dev) are made in --tls-dir when missing')
    .option('--tls-dir <dir>', 'certificate directory for --tls (default <data>/tls)')
    .option('--auth', "with authentication on (implies --tls): the first admin's token is written to <data>/admin.token")
    .action(async (o: { nodes: string; dcs: string; basePort: string; host: string; data: string; logLevel: string; tls?: boolean; tlsDir?: string; auth?: boolean }) => {
      if (o.auth) o.tls = true;
      const perDc = Number(o.nodes);
      const dcs = Number(o.dcs);
      const basePort = Number(o.basePort);
      if (!Number.isInteger(dcs) || dcs < 1 || dcs > 8) throw new InvalidArgumentError('--dcs must be 1..8');
      if (!Number.isInteger(perDc) || perDc < 1 || perDc * dcs > 64) throw new InvalidArgumentError('--nodes must be 1..64 in all');
      const nodes = perDc * dcs;
      if (!Number.isInteger(basePort) || basePort < 1 || basePort + nodes > 65535) throw new InvalidArgumentError('--base-port out of range');
      const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
      const certDir = path.resolve(o.tlsDir ?? path.join(o.data, 'tls'));
      if (o.tls) {
        const hosts = [...new Set(['localhost', '127.0.0.1', o.host])];
        const made = ensureCerts({ dir: certDir, nodes: ids, clients: ['dev'], hosts });
        process.stdout.write(`ringkv: certificates in ${certDir} (${made.created.length} files made, ${made.kept.length} kept)\n`);
      }
      const children = await startLocalCluster(
        {
          nodes,
          basePort,
          host: o.host,
          dataDir: o.data,
          logLevel: o.logLevel,
          ...(o.auth ? { extraArgs: ['--auth'] } : {}),
          dcs,
          ...(o.tls
            ? {
                nodeArgs: (id: string) => [
                  '--tls-mode', 'required',
                  '--tls-ca', certFiles.caCert(certDir),
                  '--tls-cert', certFiles.nodeCert(certDir, id),
                  '--tls-key', certFiles.nodeKey(certDir, id),
                ],
              }
            : {}),
        },
        (line) => process.stdout.write(`${line}\n`),
      );
      const seeds = children.map((_, i) => `${o.host}:${basePort + i}`).join(',');
      const tokenFile = path.resolve(o.data, 'admin.token');
      if (o.auth) await makeFirstAdmin(`${o.host}:${basePort}`, certDir, tokenFile);
      const scheme = o.tls ? 'https' : 'http';
      const curl = o.tls ? `curl --cacert ${certFiles.caCert(certDir)}` : 'curl';
      const layout =
        dcs > 1
          ? Array.from({ length: dcs }, (_, d) => `  dc${d + 1}: ${children.slice(d * perDc, (d + 1) * perDc).map((_, j) => `${o.host}:${basePort + d * perDc + j}`).join(', ')}\n`).join('') +
            `  clients name their data center: connect({ seeds, localDc: 'dc1' }); ringkv repl status shows the replication lag\n`
          : '';
      process.stdout.write(
        `\nringkv: ${nodes} nodes up at ${seeds}${o.tls ? ' (TLS required)' : ''}\n` +
          layout +
          `  ${curl} -X PUT -H 'content-type: application/json' -d '{"value":"hello"}' ${scheme}://${o.host}:${basePort}/api/v1/kv/greeting\n` +
          `  ${curl} ${scheme}://${o.host}:${basePort}/api/v1/kv/greeting\n` +
          (o.auth ? `  the admin's token is in ${tokenFile}: add -H "authorization: Bearer $(cat ${tokenFile})" to curl, --token-file ${tokenFile} to ringkv\n` : '') +
          (o.tls
            ? `  export RINGKV_TLS_CA=${certFiles.caCert(certDir)} RINGKV_TLS_CERT=${certFiles.clientCert(certDir, 'dev')} RINGKV_TLS_KEY=${certFiles.clientKey(certDir, 'dev')}\n` +
              `  ringkv status --seeds ${o.host}:${basePort}    (with those variables set)\n`
            : `  dashboard: http://${o.host}:${basePort}/ui\n`) +
          `  Ctrl-C stops the cluster.\n\n`,
      );
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = () => {
          if (stopping) return;
          stopping = true;
          process.stdout.write('\nringkv: stopping the cluster...\n');
          void stopChildren(children).then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        for (const c of children) c.once('exit', () => children.every((x) => x.exitCode !== null || x.signalCode !== null) && resolve());
      });
      process.stdout.write('ringkv: cluster stopped\n');
    });

  addTlsOptions(program
    .command('status'))
    .description('each member: state, address, keys, pending hints, engine state, suspect ranges, uptime, last heard from')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--json', 'print one JSON object {"nodes": [...]}')
    .action(async (o: { seeds?: string; json?: boolean } & TlsFlags) => {
      const { nodes } = await clusterStatus(seedsFrom(o.seeds), 2000, credentialsFrom(o));
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ nodes })}\n`);
        return;
      }
      const topology = nodes.some((n) => n.dc !== DEFAULT_DC || n.rack !== undefined);
      const rows = [
        [...(topology ? ['DC', 'RACK'] : []), 'ID', 'ADDRESS', 'STATE', 'TLS', 'LOAD', 'OWNS (effective)', 'KEYS', 'HINTS', 'ENGINE', 'SUSPECT', 'UPTIME', 'LAST HEARD'],
        ...nodes.map((n) => [
          ...(topology ? [n.dc, n.rack ?? '-'] : []),
          n.id,
          n.address,
          n.state,
          n.tls,
          n.loadBytes === undefined ? '?' : humanBytes(n.loadBytes),
          n.ownership === undefined ? '-' : `${(n.ownership * 100).toFixed(1)}%`,
          n.keys === undefined ? '?' : String(n.keys),
          n.hintsPending === undefined ? '?' : String(n.hintsPending),
          n.engine ?? '?',
          n.suspectRanges === undefined ? '?' : String(n.suspectRanges),
          n.uptimeSec === undefined ? '-' : `${n.uptimeSec}s`,
          fmtAgo(n.lastHeard),
        ]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
    });
}
