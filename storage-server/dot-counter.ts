// The node's vector-clock actor and dot counter, kept in the data directory's ACTOR file
// (format in ./data-format.md, why in ../sdk/versioning/versioning.md). The actor is
// `<node id>#<epoch>`, the epoch random per data directory, so a node id back with an empty
// disk is a new actor; the counter is node-wide (every key) and leased in blocks: a counter
// is handed out only once the file says the bound is at or above it, so no dot is ever
// issued twice — across purges, tombstone collection, crashes and restarts — with one fsync
// per block, not per write. Safe to call concurrently: counters are handed out
// synchronously, and writes of the file are serialized (each writes the newest state).

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CorruptionError, InvalidArgumentError } from '../sdk/errors.js';
import type { Dot } from '../sdk/versioning/index.js';
import type { FileSystem } from './engine/index.js';
import { NodeFileSystem } from './engine/index.js';

/** First line of the ACTOR file. */
export const ACTOR_FILE_FORMAT = 'ringkv-actor 1';
/** Counters reserved by each durable write of the ACTOR file. */
export const DEFAULT_LEASE_BLOCK = 10_000;

const EPOCH_RE = /^[0-9a-f]{8}$/;

export interface DotCounterOptions {
  /** File-system seam. Default: the real one. */
  fs?: FileSystem;
  /** Counters reserved per write of the file; a restart skips at most this many. Default 10000. */
  leaseBlock?: number;
  /** Makes a new epoch: 8 lowercase hex digits. Default: 4 random bytes. */
  newEpoch?: () => string;
}

/** What the ACTOR file holds. */
interface ActorState {
  epoch: string;
  /** No counter above it has been issued; after a restart counting resumes above it. */
  bound: number;
}

export class DotCounter {
  /** The state the file holds (durable). */
  private durable: ActorState;
  /** The state the next write of the file will hold. */
  private readonly wanted: ActorState;
  /** The highest counter handed out (or, after open, possibly handed out before). */
  private last: number;
  /** The tail of the serialized writes of the file. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly fs: FileSystem,
    private readonly file: string,
    private readonly tempFile: string,
    private readonly nodeId: string,
    private readonly leaseBlock: number,
    private readonly newEpoch: () => string,
    state: ActorState,
  ) {
    this.durable = { ...state };
    this.wanted = { ...state };
    this.last = state.bound;
  }

  /**
   * Opens the ACTOR file `file` (written through `tempFile`, then renamed), creating it with a
   * new epoch and bound 0 when it is missing — a new data directory, or one from before
   * actors had epochs: either way the node is an actor that has issued nothing. Throws
   * CorruptionError when the file is not in the format (deleting it is safe: see data-format.md).
   */
  static async open(file: string, tempFile: string, nodeId: string, opts: DotCounterOptions = {}): Promise<DotCounter> {
    if (typeof nodeId !== 'string' || nodeId.length === 0) throw new InvalidArgumentError('DotCounter: the node id must be a non-empty string');
    const leaseBlock = opts.leaseBlock ?? DEFAULT_LEASE_BLOCK;
    if (!Number.isSafeInteger(leaseBlock) || leaseBlock < 1) throw new InvalidArgumentError(`DotCounter: leaseBlock must be a positive integer, got ${leaseBlock}`);
    const fs = opts.fs ?? new NodeFileSystem();
    const newEpoch = opts.newEpoch ?? (() => randomBytes(4).toString('hex'));
    if (await fs.exists(file)) {
      const state = parseActorFile((await fs.readFile(file)).toString('utf8'), file);
      return new DotCounter(fs, file, tempFile, nodeId, leaseBlock, newEpoch, state);
    }
    const state = { epoch: checkEpoch(newEpoch()), bound: 0 };
    await fs.mkdirp(path.dirname(file));
    const c = new DotCounter(fs, file, tempFile, nodeId, leaseBlock, newEpoch, state);
    await c.writeFile(state);
    return c;
  }

  /** This node's actor now: `<node id>#<epoch>`. */
  get actor(): string {
    return `${this.nodeId}#${this.durable.epoch}`;
  }

  /** The durable bound: no counter above it has been handed out. */
  get bound(): number {
    return this.durable.bound;
  }

  /** The highest counter handed out so far (after open: the bound read from the file). */
  get lastIssued(): number {
    return this.last;
  }

  /**
   * Hands out the next dot of the current actor: the counter is
   * max(last issued + 1, atLeast(actor)), so the caller can lift it above what the key's
   * contexts hold for the actor. Resolves once the file's bound covers it (writing a new
   * bound, counter + leaseBlock, with an fsync when it does not); rejects when that write
   * fails (the counter is then never used) or the counter would pass the safe integers.
   */
  async issue(atLeast: (actor: string) => number = () => 1): Promise<Dot> {
    const actor = this.actor;
    const counter = Math.max(this.last + 1, atLeast(actor));
    if (!Number.isSafeInteger(counter)) throw new InvalidArgumentError(`the dot counter of ${actor} is past the safe integers`);
    this.last = counter;
    if (counter > this.wanted.bound) this.wanted.bound = Math.min(Number.MAX_SAFE_INTEGER, counter + this.leaseBlock);
    while (this.durable.bound < counter) await this.flush();
    return [actor, counter];
  }

  /**
   * Retires the current actor: durably takes a new epoch, so the dots issued from now on
   * belong to an actor that has issued nothing (the counter goes on). A node calls it before
   * it forgets dots of its current actor that other replicas may still hold (a purge).
   */
  async renewEpoch(): Promise<void> {
    const old = this.durable.epoch;
    let epoch = checkEpoch(this.newEpoch());
    for (let i = 0; i < 8 && epoch === old; i++) epoch = checkEpoch(this.newEpoch());
    if (epoch === old) throw new InvalidArgumentError('DotCounter: newEpoch keeps returning the current epoch');
    this.wanted.epoch = epoch;
    while (this.durable.epoch === old) await this.flush();
  }

  /** Writes the wanted state after the writes before it, unless the file already holds it. */
  private flush(): Promise<void> {
    const run = this.writing.then(async () => {
      if (this.durable.epoch === this.wanted.epoch && this.durable.bound >= this.wanted.bound) return;
      const state = { ...this.wanted };
      await this.writeFile(state);
      this.durable = state;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  /**
   * Replaces the file: a fresh temp file (a failed write is never retried on the same
   * inode), fsynced, renamed over the file, the directory fsynced.
   */
  private async writeFile(state: ActorState): Promise<void> {
    await this.fs.unlink(this.tempFile);
    await this.fs.writeFileSync(this.tempFile, Buffer.from(formatActorFile(state)));
    await this.fs.rename(this.tempFile, this.file);
    await this.fs.syncDir(path.dirname(this.file));
  }
}

/** The text of an ACTOR file. */
export function formatActorFile(state: ActorState): string {
  return `${ACTOR_FILE_FORMAT}\nepoch ${state.epoch}\nbound ${state.bound}\n`;
}

/** Parses an ACTOR file; throws CorruptionError on anything {@link formatActorFile} does not make. */
export function parseActorFile(text: string, file: string): ActorState {
  const m = /^ringkv-actor 1\nepoch ([0-9a-f]{8})\nbound (0|[1-9][0-9]{0,15})\n$/.exec(text);
  const bound = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(bound)) {
    throw new CorruptionError(
      `not an ACTOR file of format "${ACTOR_FILE_FORMAT}" (deleting it is safe: the node then takes a new epoch)`,
      { file },
    );
  }
  return { epoch: m[1]!, bound };
}

function checkEpoch(epoch: string): string {
  if (!EPOCH_RE.test(epoch)) throw new InvalidArgumentError(`DotCounter: an epoch is 8 lowercase hex digits, got ${JSON.stringify(epoch)}`);
  return epoch;
}
