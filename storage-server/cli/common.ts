// Shared pieces of the CLI: exit codes, seeds from flags or RINGKV_SEEDS, the credentials of
// the commands that talk to a cluster (TLS options, a user's token, the local data center), and the mapping from
// errors to exit codes.

import fs from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { InvalidArgumentError, RingkvError } from '../../sdk/errors.js';
import type { TlsOptions } from '../../sdk/transport-security.js';
import { transportTlsFromOptions } from '../../sdk/transport-security.js';
import { HttpTransport } from '../../sdk/transport.js';
import type { HttpTransportOptions } from '../../sdk/transport.js';

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

/** The TLS flags of a command that talks to a cluster. */
export interface TlsFlags {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsAllowPlain?: boolean;
  /** A file holding the user's token (else RINGKV_TOKEN). */
  tokenFile?: string;
}

/** What a CLI command presents to the cluster: TLS material and a user's token. */
export interface Credentials {
  tls?: TlsOptions | undefined;
  token?: string | undefined;
}

/** Adds --tls-ca, --tls-cert, --tls-key and --tls-allow-plain to a client command. */
export function addTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls-ca <file>', 'speak TLS, trusting this cluster CA certificate, PEM (env RINGKV_TLS_CA)')
    .option('--tls-cert <file>', 'client (or node) certificate to present, PEM (env RINGKV_TLS_CERT)')
    .option('--tls-key <file>', 'its private key, PEM (env RINGKV_TLS_KEY)')
    .option('--tls-allow-plain', 'also speak plain HTTP to nodes not yet on TLS, while a cluster moves (env RINGKV_TLS_ALLOW_PLAIN=1)')
    .option('--token-file <file>', "a file holding the user's token, for a cluster with authentication on (env RINGKV_TOKEN holds the token itself)");
}

/** The user's token from --token-file or RINGKV_TOKEN (never a flag: command lines are visible to every user of the host). */
export function tokenFrom(o: TlsFlags, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (o.tokenFile) {
    const t = readFile('--token-file', o.tokenFile).toString('utf8').trim();
    if (!t) throw new InvalidArgumentError(`--token-file: ${o.tokenFile} is empty`);
    return t;
  }
  const t = env.RINGKV_TOKEN?.trim();
  return t ? t : undefined;
}

/** TLS options and token of a command, from its flags and the environment. */
export function credentialsFrom(o: TlsFlags, env: NodeJS.ProcessEnv = process.env): Credentials {
  return { tls: tlsFrom(o, env), token: tokenFrom(o, env) };
}

function readFile(what: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new InvalidArgumentError(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The SDK TLS options from the flags or RINGKV_TLS_*; undefined (plain HTTP) without a CA. */
export function tlsFrom(o: TlsFlags, env: NodeJS.ProcessEnv = process.env): TlsOptions | undefined {
  const ca = o.tlsCa ?? (env.RINGKV_TLS_CA || undefined);
  const cert = o.tlsCert ?? (env.RINGKV_TLS_CERT || undefined);
  const key = o.tlsKey ?? (env.RINGKV_TLS_KEY || undefined);
  if (!ca) {
    if (cert || key) throw new InvalidArgumentError('--tls-cert and --tls-key need --tls-ca (or RINGKV_TLS_CA)');
    return undefined;
  }
  if (!cert !== !key) throw new InvalidArgumentError('--tls-cert and --tls-key go together');
  const allowPlain = o.tlsAllowPlain === true || ['1', 'true'].includes(env.RINGKV_TLS_ALLOW_PLAIN ?? '');
  return {
    ca: readFile('--tls-ca', ca),
    ...(cert && key ? { cert: readFile('--tls-cert', cert), key: readFile('--tls-key', key) } : {}),
    allowPlain,
  };
}

/** A transport for CLI requests, over TLS when `creds.tls` is given, with the token when there is one. */
export function cliTransport(creds: Credentials | undefined, o: Omit<HttpTransportOptions, 'tls' | 'token'> = {}): HttpTransport {
  return new HttpTransport({ ...o, tls: transportTlsFromOptions(creds?.tls), token: creds?.token });
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
  // The command does not fit the key (a counter command on a set, `get` on a counter).
  'WRONG_TYPE',
]);

export function exitCodeFor(err: unknown): number {
  if (err instanceof RingkvError) {
    if (err.code === 'NOT_FOUND') return EXIT.notFound;
    if (USAGE_CODES.has(err.code)) return EXIT.usage;
    return EXIT.cluster;
  }
  return EXIT.cluster;
}

/** `--local-dc NAME`: the data center a client command runs in (env RINGKV_LOCAL_DC); needed once the cluster has several. */
export function localDcOption(): Option {
  return new Option('--local-dc <name>', 'the data center this command runs in: required when the cluster has several (env RINGKV_LOCAL_DC)');
}

/** connect's `localDc` from `--local-dc` or RINGKV_LOCAL_DC ({} when neither is given: never guessed). */
export function localDcFrom(o: { localDc?: string }, env: NodeJS.ProcessEnv = process.env): { localDc?: string } {
  const localDc = o.localDc ?? (env.RINGKV_LOCAL_DC || undefined);
  return localDc ? { localDc } : {};
}
