// `ringkv snapshot` (every live node takes a hard-linked, per-node consistent snapshot of
// its tables, like Cassandra's nodetool snapshot) and `ringkv restore` (copies a snapshot
// into the empty data directory of a stopped node). storage-server/snapshot.ts does the
// work; README "Backups" says how to restore a node and a whole cluster.

import type { Command } from 'commander';
import { InvalidArgumentError } from '../../sdk/errors.js';
import type { SnapshotInfo } from '../snapshot.js';
import { restoreSnapshot } from '../snapshot.js';
import { adminCall, fetchView } from './admin-commands.js';
import { addTlsOptions, cliTransport, credentialsFrom, EXIT, seedsFrom } from './common.js';
import type { TlsFlags } from './common.js';

export function registerSnapshotCommands(program: Command): void {
  addTlsOptions(program.command('snapshot'))
    .description("every live node (or --node) hard-links its tables into <data>/snapshots/<name>: a consistent copy per node")
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--node <id>', 'only this node')
    .option('--name <name>', 'the snapshot name (default: the time, like 20261129T183000Z)')
    .action(async (o: { seeds?: string; node?: string; name?: string } & TlsFlags) => {
      const name = o.name ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      const t = cliTransport(credentialsFrom(o));
      try {
        const view = await fetchView(t, seedsFrom(o.seeds));
        const targets = view.members.filter((x) => x.state === 'up' && (!o.node || x.id === o.node));
        if (o.node && targets.length === 0) throw new InvalidArgumentError(`no live member ${o.node}`);
        const down = view.members.filter((x) => x.state !== 'up' && x.state !== 'left' && !o.node);
        for (const m of down) process.stderr.write(`${m.id}: ${m.state}, no snapshot taken\n`);
        for (const m of targets) {
          try {
            const r = await adminCall<{ snapshot: SnapshotInfo }>(t, m.address, { action: 'snapshot', name }, 10 * 60_000);
            process.stdout.write(`${m.id}: ${r.snapshot.dir} (${r.snapshot.tables} tables, ${r.snapshot.bytes} bytes)\n`);
          } catch (err) {
            process.stdout.write(`${m.id}: failed: ${(err as Error).message}\n`);
            process.exitCode = EXIT.cluster;
          }
        }
        if (down.length > 0) process.exitCode = EXIT.cluster;
      } finally {
        await t.close();
      }
    });

  program
    .command('restore')
    .description('copy a snapshot into the empty data directory of a stopped node (then start it and run ringkv repair)')
    .requiredOption('--from <dir>', 'the snapshot directory (or a copy of it)')
    .requiredOption('--data <dir>', "the node's data directory: missing or empty")
    .option('--whole-cluster', 'every node is restored from snapshots of one name: the node does not recover from its peers when it starts (never for one node among running peers)')
    .action(async (o: { from: string; data: string; wholeCluster?: boolean }) => {
      const files = await restoreSnapshot(o.from, o.data, { wholeCluster: o.wholeCluster === true });
      process.stdout.write(`restored ${files} files into ${o.data}; start the node, then run ringkv repair\n`);
    });
}
