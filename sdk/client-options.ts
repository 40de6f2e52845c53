// The one place connect()'s options are checked and their defaults filled (the options
// themselves are documented in sdk/client-types.ts). Pure; the resolved settings are
// read-only for the life of a client.

import type { Consistency } from './consistency.js';
import { quorumFor } from './consistency.js';
import { InvalidArgumentError, InvalidConsistencyError } from './errors.js';
import type { RetryPolicy } from './retry.js';
import { resolveRetry } from './retry.js';
import { TOPOLOGY_NAME } from './ring.js';
import type { ConflictMode, ConnectOptions, SiblingResolver, ValueEncoding } from './client-types.js';

/** A client's settings: connect()'s options with their defaults. */
export interface ClientSettings<V> {
  consistency: Consistency;
  conflictMode: ConflictMode;
  resolver: SiblingResolver<V> | undefined;
  timeoutMs: number;
  valueEncoding: ValueEncoding;
  readRepair: boolean;
  readFanout: 'quorum' | 'all';
  readRepairChance: number;
  hintsCountTowardW: boolean | undefined;
  maxWriteRounds: number;
  maxRingRetries: number;
  retry: RetryPolicy;
  localDc: string | undefined;
  maxClockSkewMs: number;
}

/** Checks connect()'s options (InvalidArgumentError, InvalidConsistencyError) and fills their defaults. */
export function resolveClientOptions<V>(o: ConnectOptions<V>): ClientSettings<V> {
  if (!o || !Array.isArray(o.seeds) || o.seeds.length === 0 || !o.seeds.every((s) => typeof s === 'string' && /^[^:]+:\d+$/.test(s))) {
    throw new InvalidArgumentError('seeds must be a non-empty list of "host:port" strings');
  }
  const timeoutMs = o.timeoutMs ?? 2000;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs must be a positive number');
  const conflictMode = o.conflictMode ?? 'lww';
  if (conflictMode !== 'lww' && conflictMode !== 'vector-clock') throw new InvalidArgumentError(`conflictMode must be lww or vector-clock`);
  const valueEncoding = o.valueEncoding ?? 'bytes';
  if (!['bytes', 'utf8', 'json'].includes(valueEncoding)) throw new InvalidArgumentError('valueEncoding must be bytes, utf8 or json');
  if (o.readFanout !== undefined && o.readFanout !== 'quorum' && o.readFanout !== 'all') throw new InvalidArgumentError('readFanout must be quorum or all');
  if (o.readRepairChance !== undefined && !(o.readRepairChance >= 0 && o.readRepairChance <= 1)) {
    throw new InvalidArgumentError('readRepairChance must be between 0 and 1');
  }
  quorumFor(o.consistency ?? 'strong', 3); // validates
  if (o.localDc !== undefined && (typeof o.localDc !== 'string' || !TOPOLOGY_NAME.test(o.localDc))) {
    throw new InvalidArgumentError("localDc must be a data center name (1-64 letters, digits, '.', '_' or '-')");
  }
  if (o.consistency === 'linearizable' && conflictMode !== 'lww') throw linearizableNeedsLww();
  const maxClockSkewMs = o.maxClockSkewMs ?? 5000;
  if (!(Number.isFinite(maxClockSkewMs) && maxClockSkewMs >= 0)) throw new InvalidArgumentError('maxClockSkewMs must be a non-negative number');
  const maxWriteRounds = o.maxWriteRounds ?? 8;
  if (!(Number.isInteger(maxWriteRounds) && maxWriteRounds >= 1)) throw new InvalidArgumentError('maxWriteRounds must be a positive integer');
  const retry = resolveRetry(o.retry);
  const maxRingRetries = o.maxRingRetries ?? 4;
  if (!(Number.isInteger(maxRingRetries) && maxRingRetries >= 0)) throw new InvalidArgumentError('maxRingRetries must be a non-negative integer');
  return {
    consistency: o.consistency ?? 'strong',
    conflictMode,
    resolver: o.resolver,
    timeoutMs,
    valueEncoding,
    readRepair: o.readRepair ?? true,
    readFanout: o.readFanout ?? 'quorum',
    readRepairChance: o.readRepairChance ?? 0.1,
    hintsCountTowardW: o.hintsCountTowardW,
    maxWriteRounds,
    maxRingRetries,
    retry,
    localDc: o.localDc,
    maxClockSkewMs,
  };
}

/** INVALID_CONSISTENCY: `linearizable` with vector clocks. */
export function linearizableNeedsLww(): InvalidConsistencyError {
  const e = new InvalidConsistencyError('linearizable');
  e.message = "consistency 'linearizable' needs conflictMode 'lww' (with vector clocks, concurrent writes are kept as siblings)";
  return e;
}
