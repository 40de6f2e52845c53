// Shared pieces of the CLI: exit codes, seeds from flags or RINGKV_SEEDS, and the mapping
// from errors to exit codes.

import { InvalidArgumentError, RingkvError } from '../../sdk/errors.js';

export const EXIT = { ok: 0, notFound: 1, usage: 2, cluster: 3 } as const;

/** Seeds from --seeds or RINGKV_SEEDS ("host:port,host:port"); default the local cluster's first node. */
export function seedsFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = flag ?? env.RINGKV_SEEDS ?? '127.0.0.1:7001';
  const seeds = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (seeds.length === 0 || !seeds.every((s) => /^[^:\s]+:\d{1,5}$/.test(s))) {
    throw new InvalidArgumentError(`seeds must be host:port[,host:port...], got "${raw}"`);
  }
  return seeds;
}

const USAGE_CODES = new Set([
  'INVALID_ARGUMENT',
  'KEY_EMPTY',
  'KEY_TOO_LARGE',
  'VALUE_TOO_LARGE',
  'INVALID_METADATA',
  'INVALID_CONSISTENCY',
  'MALFORMED_REQUEST',
  'PAYLOAD_TOO_LARGE',
]);

export function exitCodeFor(err: unknown): number {
  if (err instanceof RingkvError) {
    if (err.code === 'NOT_FOUND') return EXIT.notFound;
    if (USAGE_CODES.has(err.code)) return EXIT.usage;
    return EXIT.cluster;
  }
  return EXIT.cluster;
}
