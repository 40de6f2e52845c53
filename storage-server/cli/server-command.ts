// `ringkv server`: runs one storage server in this process until SIGTERM/SIGINT, then
// stops it cleanly (stop accepting, finish in-flight requests, flush, close).

import os from 'node:os';
import { capAcceptedProtocolForTests } from '../../sdk/wire/protocol.js';
import { configFromEnv, configFromFile, resolveServerConfig } from '../config.js';
import { availableMemoryBytes, engineMemoryDefaults } from '../memory-budget.js';
import { StorageServer } from '../server.js';

/**
 * Test only (the mixed-version tests, test/cluster/rolling-upgrade.test.ts): the highest
 * protocol version this node accepts, so that a node of this build answers like a node of an
 * older protocol (sdk/wire/wire-format.md). Unset: PROTOCOL_VERSION. Never set in production.
 */
export const TEST_ACCEPT_PROTOCOL_MAX_ENV = 'RINGKV_TEST_ACCEPT_PROTOCOL_MAX';

export async function runServer(flags: Record<string, string | boolean | undefined>): Promise<void> {
  const fromFlags: Record<string, unknown> = {
    id: flags.id,
    host: flags.host,
    port: flags.port,
    advertise: flags.advertise,
    advertiseRemote: flags.advertiseRemote,
    dc: flags.dc,
    rack: flags.rack,
    dataDir: flags.data,
    seeds: flags.seeds,
    weight: flags.weight,
    vnodesPerNode: flags.vnodes,
    replicationFactor: flags.replication,
    sync: flags.sync,
    logLevel: flags.logLevel,
    join: flags.join === true ? true : undefined,
    tls: { mode: flags.tlsMode, ca: flags.tlsCa, cert: flags.tlsCert, key: flags.tlsKey },
    auth: { enabled: flags.auth === true ? true : undefined },
  };
  // The engine's memory defaults follow the memory this process may use (a cgroup limit).
  const memoryBytes = availableMemoryBytes(process.constrainedMemory?.(), os.totalmem());
  const memory = engineMemoryDefaults(memoryBytes);
  const cfg = resolveServerConfig(memory, typeof flags.config === 'string' ? configFromFile(flags.config) : {}, configFromEnv(), fromFlags);
  const capped = process.env[TEST_ACCEPT_PROTOCOL_MAX_ENV];
  if (capped !== undefined && capped !== '') capAcceptedProtocolForTests(Number(capped));
  const server = await StorageServer.start(cfg);
  if (capped) server.log.warn({ acceptedProtocolMax: Number(capped) }, `${TEST_ACCEPT_PROTOCOL_MAX_ENV} is set: this node refuses protocol versions above it (a test switch)`);
  server.log.info({ memoryBytes, blockCacheSizeBytes: cfg.blockCacheSizeBytes, memtableSizeBytes: cfg.memtableSizeBytes }, 'engine memory');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.log.info({ signal }, 'signal received, shutting down');
    server.stop().then(
      () => process.exit(0),
      (err) => {
        server.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (err) => server.log.error({ err }, 'unhandled rejection'));
  // Parent processes that start us with an IPC channel learn the bound address; when such
  // a parent dies (even by kill -9) the channel closes and we stop too, never orphaned.
  if (process.send) {
    process.send({ type: 'ready', id: cfg.id, address: server.address });
    process.on('disconnect', () => stop('parent exited'));
  }
}
