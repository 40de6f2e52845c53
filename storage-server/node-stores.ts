// Opens what a node keeps on disk, in its data directory (data-format.md): the engine, the
// vector-clock actor's dot counter, the hint store, the replication queue (several data
// centers) and the user table (tls mode required). What opened is closed again when a later
// one fails, so a failed start leaves nothing open. Called once, at start.

import type pino from 'pino';
import type { Clock } from '../sdk/clock.js';
import { AuthTable } from './auth/auth-table.js';
import type { ServerConfig } from './config.js';
import { engineSettings } from './config.js';
import type { DataDirLayout } from './data-dir.js';
import { DotCounter } from './dot-counter.js';
import type { FileSystem } from './engine/index.js';
import { Engine } from './engine/index.js';
import { HintStore } from './handoff/hint-store.js';
import type { Logger } from './logger.js';
import { REPLICA_ENGINE_MAX_KEY_BYTES } from './replica-store.js';
import { ReplQueue } from './replication/repl-queue.js';

export interface NodeStores {
  engine: Engine;
  dots: DotCounter;
  hints: HintStore;
  /** The user table, kept when the node speaks TLS only. */
  authTable: AuthTable | undefined;
  /** The queue per other data center (several data centers only). */
  replQueue: ReplQueue | undefined;
}

export interface OpenStoresOptions {
  config: ServerConfig;
  layout: DataDirLayout;
  clock: Clock;
  log: pino.Logger;
  fs: FileSystem | undefined;
  /** This node recovers from a long outage: the user table is dropped and taken from the peers. */
  recovering: boolean;
  /** The engine's tombstone horizon with several data centers (replication.ts). */
  tombstoneHorizon: () => number;
}

export async function openNodeStores(o: OpenStoresOptions): Promise<NodeStores> {
  const { config, layout, clock, log } = o;
  const fsSeam = o.fs ? { fs: o.fs } : {};
  const multiDc = Object.keys(config.replication).length > 1;
  const engine = await Engine.open(layout.engineDir, {
    ...engineSettings(config),
    tombstoneHorizon: () => (multiDc ? o.tombstoneHorizon() : undefined),
    maxKeyBytes: REPLICA_ENGINE_MAX_KEY_BYTES,
    clock,
    logger: log.child({ component: 'engine' }) as Logger,
    ...fsSeam,
  });
  let hints: HintStore;
  let dots: DotCounter;
  let authTable: AuthTable | undefined;
  let replQueue: ReplQueue | undefined;
  try {
    // The user table, when the node speaks TLS only. A node back from an outage longer than
    // the tombstone grace period may hold users removed meanwhile whose removals its peers
    // have forgotten: it drops its copy and takes its peers'.
    if (config.tls.mode === 'required') {
      authTable = AuthTable.open(
        {
          file: layout.authFile,
          tmp: layout.authTempFile,
          clock,
          log: log.child({ component: 'auth' }) as Logger,
          cacheTtlMs: config.auth.cacheTtlMs,
          tombstoneRetentionMs: config.tombstoneGraceMs,
        },
        o.recovering,
      );
    }
    dots = await DotCounter.open(layout.actorFile, layout.actorTempFile, config.id, fsSeam);
    // Without fsync a machine crash can take this node's latest writes, and with them its
    // actor's history of their keys: with sync 'none' every start is a new actor.
    if (config.sync === 'none') await dots.renewEpoch();
    hints = await HintStore.open(layout.hintsDir, {
      maxHintBytes: config.maxHintBytes,
      maxHintAgeMs: config.maxHintAgeMs,
      sync: config.sync,
      clock,
      log: log.child({ component: 'hints' }) as Logger,
      ...fsSeam,
    });
    if (multiDc) {
      try {
        replQueue = await ReplQueue.open(layout.replDir, {
          maxBytesPerDc: config.replQueueMaxBytes,
          maxAgeMs: config.replQueueMaxAgeMs,
          sync: config.sync,
          clock,
          log: log.child({ component: 'repl-queue' }),
          ...fsSeam,
        });
      } catch (err) {
        await hints.close().catch(() => undefined);
        throw err;
      }
    }
  } catch (err) {
    await engine.close().catch(() => undefined);
    throw err;
  }
  return { engine, dots, hints, authTable, replQueue };
}

/** Closes what openNodeStores opened (a start that failed before the server took them over). */
export async function closeNodeStores(s: NodeStores): Promise<void> {
  await s.engine.close().catch(() => undefined);
  await s.hints.close().catch(() => undefined);
  await s.replQueue?.close().catch(() => undefined);
}
