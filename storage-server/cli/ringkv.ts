#!/usr/bin/env node
// The `ringkv` command: run a storage server, start a local cluster, and talk to a cluster
// (status, get, put, del, counter, set, dt, operator actions, users and roles). Exit codes: 0 success, 1 not found, 2 usage error, 3 cluster
// error (quorum not met, unreachable), with a one-line message on stderr.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { RingkvError, UnavailableError } from '../../sdk/errors.js';
import { fromEngineError } from '../engine-error-map.js';
import { EXIT, exitCodeFor } from './common.js';
import { registerClusterCommands } from './cluster-commands.js';
import { registerDataCommands } from './data-commands.js';
import { registerDataTypeCommands } from './data-type-commands.js';
import { registerExportImportCommands } from './export-import-commands.js';
import { registerSnapshotCommands } from './snapshot-commands.js';
import { registerAdminCommands, registerMembershipCommands } from './admin-commands.js';
import { registerHotKeysCommand } from './hotkeys-command.js';
import { registerReplCommands } from './repl-commands.js';
import { runServer } from './server-command.js';
import { registerCertsCommand } from './certs-command.js';
import { registerAuthCommands } from './auth-commands.js';

const program = new Command();
program
  .name('ringkv')
  .description('ringkv: a Dynamo-style distributed key-value store')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ outputError: (s, write) => write(s) });

program
  .command('server')
  .description('run a storage server (a node of the cluster)')
  .option('--id <id>', 'unique node id (env RINGKV_ID)')
  .option('--host <host>', 'address to bind and advertise (default 127.0.0.1)')
  .option('--port <port>', 'HTTP port (default 7001)')
  .option('--advertise <host:port>', 'address peers and clients use, when it differs from host:port')
  .option('--advertise-remote <host:port>', 'address the nodes and clients of other data centers use (public/NAT address, inter-DC gateway)')
  .option('--dc <name>', 'data center of this node (env RINGKV_DC; default: the one data center "default")')
  .option('--rack <name>', 'rack of this node within its data center (env RINGKV_RACK)')
  .option('--data <dir>', 'data directory (default ./data/<id>)')
  .option('--seeds <list>', 'comma-separated host:port of other nodes (env RINGKV_SEEDS)')
  .option('--weight <w>', 'virtual-node weight (default 1)')
  .option('--vnodes <n>', 'virtual nodes per member at weight 1; the same on every node (default 128)')
  .option('--replication <n|dc:n,...>', 'replicas per key, or per data center (east:3,west:3); the same on every node (default 3)')
  .addOption(new Option('--sync <policy>', 'WAL durability (default batch)').choices(['always', 'batch', 'none']))
  .option('--join', 'join an existing cluster (through --seeds): stream the ranges this node will own, then serve')
  .addOption(new Option('--tls-mode <mode>', 'transport security: off (default), transitional (plain and TLS), required (env RINGKV_TLS_MODE)').choices(['off', 'transitional', 'required']))
  .option('--tls-ca <file>', 'the cluster CA certificate, PEM (env RINGKV_TLS_CA)')
  .option('--tls-cert <file>', "this node's certificate, PEM, naming URI:ringkv://node/<id> (env RINGKV_TLS_CERT)")
  .option('--tls-key <file>', "the certificate's private key, PEM (env RINGKV_TLS_KEY)")
  .option('--auth', 'authentication and permissions on: clients need a user token (needs --tls-mode required; env RINGKV_AUTH_ENABLED=true)')
  .option('--config <file>', 'JSON config file (flags and env override it)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
  .action(async (opts: Record<string, string | undefined>) => {
    await runServer(opts);
  });

program
  .command('bench')
  .description('run the cluster benchmark (benchmarks/kv-bench.ts; `ringkv bench -- --help` for its flags)')
  .allowUnknownOption()
  .helpOption(false)
  .argument('[args...]', 'flags for the benchmark, e.g. --workload mix --consistency strong --duration 30')
  .action(async (args: string[]) => {
    const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../benchmarks/kv-bench.js');
    if (!fs.existsSync(script)) throw new UnavailableError(`the benchmark is not built (${script}): run npm run build in the ringkv repository`);
    const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
    const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 3)));
    process.exitCode = code;
  });

registerClusterCommands(program);
registerDataCommands(program);
registerDataTypeCommands(program);
registerExportImportCommands(program);
registerSnapshotCommands(program);
registerAdminCommands(program);
registerMembershipCommands(program);
registerCertsCommand(program);
registerAuthCommands(program);
registerHotKeysCommand(program);
registerReplCommands(program);

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (thrown) {
    // The engine's errors (a locked or manifest-less data directory…) carry the same codes.
    const err = fromEngineError(thrown) ?? thrown;
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0.
      process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
    }
    const code = exitCodeFor(err);
    const msg = err instanceof RingkvError ? `${err.code}: ${err.message}` : (err as Error)?.message ?? String(err);
    process.stderr.write(`ringkv: ${msg}\n`);
    process.exit(code);
  }
}

await main();
