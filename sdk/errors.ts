// Typed errors of ringkv. Every error carries a stable `code` that users match on
// (never the message), and the HTTP status the public API answers with for it.
// The same codes travel over the wire (see sdk/wire/wire-format.md) and appear in
// HTTP error bodies as {"code", "message"}. Codes are append-only: never rename one.

/** Every stable error code ringkv can produce. */
export const ErrorCodes = {
  /** An argument or option has a bad type or value. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The key is empty. */
  KEY_EMPTY: 'KEY_EMPTY',
  /** The key is longer than 256 bytes. */
  KEY_TOO_LARGE: 'KEY_TOO_LARGE',
  /** The value is larger than 1 MiB. */
  VALUE_TOO_LARGE: 'VALUE_TOO_LARGE',
  /** The metadata (content type) is too long or malformed. */
  INVALID_METADATA: 'INVALID_METADATA',
  /** The consistency level is not one of strong, eventual, all, or a valid {r, w}. */
  INVALID_CONSISTENCY: 'INVALID_CONSISTENCY',
  /** A request body could not be parsed (malformed JSON or msgpack). */
  MALFORMED_REQUEST: 'MALFORMED_REQUEST',
  /** A request body is larger than the server accepts. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** No such route on the HTTP API. */
  ROUTE_NOT_FOUND: 'ROUTE_NOT_FOUND',
  /** The method is not allowed on this route. */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** The key does not exist (or has expired, or was deleted). */
  NOT_FOUND: 'NOT_FOUND',
  /** Fewer replicas answered than the consistency level requires. */
  QUORUM_NOT_MET: 'QUORUM_NOT_MET',
  /** The operation did not finish within its timeout. */
  TIMEOUT: 'TIMEOUT',
  /** A node could not be reached. */
  NODE_UNAVAILABLE: 'NODE_UNAVAILABLE',
  /** The wire protocol version of the peer is not supported. */
  PROTOCOL_MISMATCH: 'PROTOCOL_MISMATCH',
  /** The client, engine or server has been closed. */
  CLOSED: 'CLOSED',
  /** Stored data failed a checksum or could not be decoded. */
  CORRUPTION: 'CORRUPTION',
  /** The data directory is held by another process. */
  LOCKED: 'LOCKED',
  /** The data directory has data files but no manifest. */
  MANIFEST_MISSING: 'MANIFEST_MISSING',
  /**
   * A write or fsync failed: the outcome of the writes in flight is unknown (they may or may
   * not be durable). The engine recovers by itself (an internal reopen); while it cannot, or
   * once it has given up (engine state `failed`), writes fail with this code.
   */
  WRITE_FAILED: 'WRITE_FAILED',
  /** An I/O call failed. */
  IO_ERROR: 'IO_ERROR',
  /** The server is shutting down or not ready. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** Anything else: a bug. */
  INTERNAL: 'INTERNAL',
  /** A timestamp leads the receiving server's clock by more than it accepts (maxClockSkewMs). */
  CLOCK_SKEW: 'CLOCK_SKEW',
  /** The caller aborted the call (its AbortSignal fired). */
  ABORTED: 'ABORTED',
  /** A replica received an operation after its deadline had passed and did not do it. */
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  /** The node refused the request without doing it: it could not answer in time (load shedding) or has too many connections. */
  OVERLOADED: 'OVERLOADED',
  /** An internal endpoint got a body that is not application/msgpack (a cross-site "simple" request, say). */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** The caller may not do this (a browser page of a foreign origin, or missing permissions). */
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  /**
   * A replica refused a write routed on a ring older than the one it knows (a node joined,
   * left or was removed since the sender's view): refresh the view and route again.
   */
  RING_CHANGED: 'RING_CHANGED',
  /** The key holds a data type (counter, set, register, map) other than the one the operation or the other replica's state is. */
  WRONG_TYPE: 'WRONG_TYPE',
  /** The caller did not prove who it is where that is needed: no certificate, or one the node did not accept (expired, another CA). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The node accepts TLS only (tls mode `required`) and the request came as plain HTTP. */
  TLS_REQUIRED: 'TLS_REQUIRED',
  /**
   * The node's engine refused the write before writing anything: its disk is full, it is out
   * of file descriptors, or it is recovering from a failed write. The engine retries by
   * itself and resumes when it can; the write took effect nowhere on this node.
   */
  WRITE_REFUSED: 'WRITE_REFUSED',
  /**
   * This replica cannot vouch for the key: it lies in a data block that failed its checksum
   * and is quarantined until repaired from the other replicas. Ask another replica.
   */
  SUSPECT_RANGE: 'SUSPECT_RANGE',
  /**
   * The cluster spans several data centers and the client did not say which one it is in
   * (connect's `localDc`), or named one the cluster does not have: it is never guessed.
   */
  LOCAL_DC_REQUIRED: 'LOCAL_DC_REQUIRED',
  /**
   * A node's cluster-wide settings (vnodes per node, replicas per data center) differ from
   * its peer's: they must be the same on every node. Gossip between them is refused, and a
   * node that finds it at start refuses to start.
   */
  SETTINGS_MISMATCH: 'SETTINGS_MISMATCH',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** HTTP status that the public API answers with for each code. */
export const httpStatusForCode: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  KEY_EMPTY: 400,
  KEY_TOO_LARGE: 400,
  VALUE_TOO_LARGE: 413,
  INVALID_METADATA: 400,
  INVALID_CONSISTENCY: 400,
  MALFORMED_REQUEST: 400,
  PAYLOAD_TOO_LARGE: 413,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  NOT_FOUND: 404,
  QUORUM_NOT_MET: 503,
  TIMEOUT: 504,
  NODE_UNAVAILABLE: 503,
  PROTOCOL_MISMATCH: 400,
  CLOSED: 503,
  CORRUPTION: 500,
  LOCKED: 500,
  MANIFEST_MISSING: 500,
  WRITE_FAILED: 500,
  IO_ERROR: 500,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  CLOCK_SKEW: 400,
  ABORTED: 499,
  DEADLINE_EXCEEDED: 504,
  OVERLOADED: 503,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PERMISSION_DENIED: 403,
  RING_CHANGED: 409,
  WRONG_TYPE: 409,
  UNAUTHENTICATED: 401,
  TLS_REQUIRED: 426,
  WRITE_REFUSED: 503,
  SUSPECT_RANGE: 503,
  LOCAL_DC_REQUIRED: 400,
  SETTINGS_MISMATCH: 409,
};

/** Base class of every ringkv error. Match on `code`. */
export class RingkvError extends Error {
  readonly code: ErrorCode;
  /** Extra structured facts about the failure (file, offset, counts…). */
  readonly details: Record<string, unknown> | undefined;
  /**
   * For a failed write (put, delete): true when the write is known to have taken effect
   * nowhere — no replica stored it and none can later (it was refused, or never sent), so
   * retrying cannot duplicate it. False when it may have been applied on some replica and may
   * still become visible (a timeout, a quorum missed after some replica took it): the outcome
   * is unknown. Always false for errors of other operations.
   */
  notApplied = false;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  /** The HTTP status the public API uses for this error. */
  get httpStatus(): number {
    return httpStatusForCode[this.code] ?? 500;
  }

  /** The JSON body of an HTTP error response. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown>; notApplied?: true } {
    const out: { code: ErrorCode; message: string; details?: Record<string, unknown>; notApplied?: true } = { code: this.code, message: this.message };
    if (this.details) out.details = this.details;
    if (this.notApplied) out.notApplied = true;
    return out;
  }
}

export class InvalidArgumentError extends RingkvError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.INVALID_ARGUMENT, message, details);
  }
}

export class KeyEmptyError extends RingkvError {
  constructor() {
    super(ErrorCodes.KEY_EMPTY, 'key must not be empty');
  }
}

export class KeyTooLargeError extends RingkvError {
  constructor(sizeBytes: number, limitBytes: number) {
    super(ErrorCodes.KEY_TOO_LARGE, `key is ${sizeBytes} bytes; the limit is ${limitBytes}`, { sizeBytes, limitBytes });
  }
}

export class ValueTooLargeError extends RingkvError {
  constructor(sizeBytes: number, limitBytes: number) {
    super(ErrorCodes.VALUE_TOO_LARGE, `value is ${sizeBytes} bytes; the limit is ${limitBytes}`, { sizeBytes, limitBytes });
  }
}

export class InvalidMetadataError extends RingkvError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_METADATA, message);
  }
}

export class InvalidConsistencyError extends RingkvError {
  constructor(given: unknown) {
    super(
      ErrorCodes.INVALID_CONSISTENCY,
      `unknown consistency level ${JSON.stringify(given)}; use linearizable, strong, eventual, all, quorum, localQuorum, localOne, eachQuorum, or {r, w} with 1 <= r, w <= N`,
    );
  }
}

export class MalformedRequestError extends RingkvError {
  constructor(message: string) {
    super(ErrorCodes.MALFORMED_REQUEST, message);
  }
}

export class PayloadTooLargeError extends RingkvError {
  constructor(limitBytes: number) {
    super(ErrorCodes.PAYLOAD_TOO_LARGE, `request body exceeds ${limitBytes} bytes`, { limitBytes });
  }
}

export class NotFoundError extends RingkvError {
  constructor(message = 'key not found') {
    super(ErrorCodes.NOT_FOUND, message);
  }
}

/**
 * Fewer replicas answered than the consistency level requires. With several data centers,
 * `dc` names the one that fell short (a level's count within one data center): a local
 * level never makes up for its own data center with another's replicas.
 */
export class QuorumNotMetError extends RingkvError {
  readonly required: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly dc: string | undefined;
  constructor(op: string, required: number, succeeded: number, failed: number, cause?: unknown, dc?: string) {
    super(
      ErrorCodes.QUORUM_NOT_MET,
      `${op}: quorum not met${dc !== undefined ? ` in data center ${dc}` : ''}: ${succeeded} of the ${required} required replicas answered (${failed} failed)`,
      dc !== undefined ? { op, required, succeeded, failed, dc } : { op, required, succeeded, failed },
      { cause },
    );
    this.required = required;
    this.succeeded = succeeded;
    this.failed = failed;
    this.dc = dc;
  }
}

/**
 * The cluster has several data centers and the client named none of them as its own
 * (connect's `localDc`), or named one the cluster does not have.
 */
export class LocalDcRequiredError extends RingkvError {
  constructor(dcs: readonly string[], given?: string) {
    super(
      ErrorCodes.LOCAL_DC_REQUIRED,
      given === undefined
        ? `the cluster has the data centers ${dcs.join(', ')}: name the one this client runs in (connect({ localDc })); it is never guessed`
        : `localDc ${JSON.stringify(given)} is not a data center of the cluster (${dcs.join(', ')})`,
      given === undefined ? { dcs: [...dcs] } : { dcs: [...dcs], localDc: given },
    );
  }
}

/** Two nodes' cluster-wide settings differ (they must be the same on every node). */
export class SettingsMismatchError extends RingkvError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.SETTINGS_MISMATCH, message, details);
  }
}

export class TimeoutError extends RingkvError {
  constructor(op: string, timeoutMs: number, details?: Record<string, unknown>) {
    super(ErrorCodes.TIMEOUT, `${op} timed out after ${timeoutMs} ms`, { op, timeoutMs, ...details });
  }
}

export class NodeUnavailableError extends RingkvError {
  constructor(node: string, message: string, cause?: unknown) {
    super(ErrorCodes.NODE_UNAVAILABLE, `node ${node} unavailable: ${message}`, { node }, { cause });
  }
}

/**
 * The two sides speak no common protocol version. `details` (when known): `min`/`max`, the
 * versions the refusing side speaks; from the SDK meeting an older node, `node`, `address`,
 * `route`, `needsProtocol` and `nodeProtocol` (sdk/protocol-support.ts).
 */
export class ProtocolMismatchError extends RingkvError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.PROTOCOL_MISMATCH, message, details);
  }
}

export class ClosedError extends RingkvError {
  constructor(what: string) {
    super(ErrorCodes.CLOSED, `${what} is closed`);
  }
}

/** Stored data failed its checksum or could not be decoded. Names the file and offset. */
export class CorruptionError extends RingkvError {
  constructor(message: string, details: { file: string; offset?: number; [k: string]: unknown }) {
    super(
      ErrorCodes.CORRUPTION,
      `corruption in ${details.file}${details.offset !== undefined ? ` at offset ${details.offset}` : ''}: ${message}`,
      details,
    );
  }
}

export class LockedError extends RingkvError {
  constructor(dir: string, holder: string) {
    super(ErrorCodes.LOCKED, `data directory ${dir} is in use by ${holder}`, { dir, holder });
  }
}

export class ManifestMissingError extends RingkvError {
  constructor(dir: string) {
    super(
      ErrorCodes.MANIFEST_MISSING,
      `data directory ${dir} holds data files but no MANIFEST; refusing to open it as empty`,
      { dir },
    );
  }
}

export class WriteFailedError extends RingkvError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.WRITE_FAILED, message, undefined, { cause });
  }
}

/**
 * The engine refused a write before writing anything (out of space or descriptors, or
 * recovering from a failed write); it retries by itself. `notApplied` is always true.
 */
export class WriteRefusedError extends RingkvError {
  constructor(message: string, cause?: unknown, details?: Record<string, unknown>) {
    super(ErrorCodes.WRITE_REFUSED, message, details, { cause });
    this.notApplied = true;
  }
}

/** A replica's copy of a key lies in a quarantined (corrupt, being repaired) range: ask another replica. */
export class SuspectRangeError extends RingkvError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.SUSPECT_RANGE, message, details);
  }
}

export class IoError extends RingkvError {
  constructor(message: string, cause?: unknown, details?: Record<string, unknown>) {
    super(ErrorCodes.IO_ERROR, message, details, { cause });
  }
}

export class UnavailableError extends RingkvError {
  constructor(message: string) {
    super(ErrorCodes.UNAVAILABLE, message);
  }
}

/**
 * A write's timestamp leads the receiving server's clock by more than `maxClockSkewMs`, or a
 * key holds a version stamped so far ahead that no write can be stamped above it within the
 * bound. Fix the clock of the client or server named in the message (NTP).
 */
export class ClockSkewError extends RingkvError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.CLOCK_SKEW, message, details);
  }
}

/** The caller's AbortSignal fired before the call finished. */
export class AbortedError extends RingkvError {
  constructor(op: string, reason?: unknown) {
    super(ErrorCodes.ABORTED, `${op} was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`, { op }, { cause: reason });
  }
}

/**
 * The node refused a request it could not answer in time, or the client's own queue for that
 * node would have made it too late (then `details.sent` is false); nothing was done. Retry
 * after `retryAfterSec` (the client's refusals may give a fraction of a second).
 */
export class OverloadedError extends RingkvError {
  constructor(message: string, retryAfterSec: number, details?: Record<string, unknown>) {
    super(ErrorCodes.OVERLOADED, message, { retryAfterSec, ...details });
  }
}

/** A replica got an operation whose deadline had already passed; it did nothing. */
export class DeadlineExceededError extends RingkvError {
  constructor(message: string) {
    super(ErrorCodes.DEADLINE_EXCEEDED, message);
  }
}

/**
 * A replica refused a write routed on an older ring than the one it knows (its epoch is in
 * `details.ringEpoch`). The SDK refreshes its view and routes again within the call's
 * timeout; an application sees it only when that keeps failing.
 */
export class RingChangedError extends RingkvError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.RING_CHANGED, message, details);
  }
}

export class InternalError extends RingkvError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.INTERNAL, message, undefined, { cause });
  }
}

/**
 * A data-type operation or merge met a key that holds another data type: an increment on a
 * set, say, or two replicas holding a counter and a map under one key. Nothing was changed.
 */
export class WrongTypeError extends RingkvError {
  constructor(expected: string, got: string, what = 'operation') {
    super(ErrorCodes.WRONG_TYPE, `the key holds a ${expected}; the ${what} is for a ${got}`, { expected, got });
  }
}

/**
 * An update would make a data type's encoded state larger than the value limit (1 MiB).
 * Code VALUE_TOO_LARGE, like an oversized value; `details` names the type and the sizes.
 * Nothing was changed.
 */
export class DataTypeTooLargeError extends RingkvError {
  constructor(type: string, sizeBytes: number, limitBytes: number) {
    super(
      ErrorCodes.VALUE_TOO_LARGE,
      `the ${type} would be ${sizeBytes} bytes encoded; the limit is ${limitBytes}: remove elements or fields, or split it over several keys`,
      { type, sizeBytes, limitBytes },
    );
  }
}

const codeSet = new Set<string>(Object.values(ErrorCodes));

/**
 * Codes a replica answers only for an operation it refused before applying anything (bad
 * input, a timestamp too far ahead, a server closing): a write that got only such answers
 * took effect nowhere. Failures of I/O, timeouts and unreachable nodes are not here: the
 * write may have reached the disk.
 */
const NOT_APPLIED_CODES = new Set<string>([
  ErrorCodes.INVALID_ARGUMENT,
  ErrorCodes.KEY_EMPTY,
  ErrorCodes.KEY_TOO_LARGE,
  ErrorCodes.VALUE_TOO_LARGE,
  ErrorCodes.INVALID_METADATA,
  ErrorCodes.INVALID_CONSISTENCY,
  ErrorCodes.MALFORMED_REQUEST,
  ErrorCodes.PAYLOAD_TOO_LARGE,
  ErrorCodes.PROTOCOL_MISMATCH,
  ErrorCodes.CLOCK_SKEW,
  ErrorCodes.CLOSED,
  ErrorCodes.DEADLINE_EXCEEDED,
  ErrorCodes.OVERLOADED,
  ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
  ErrorCodes.PERMISSION_DENIED,
  ErrorCodes.RING_CHANGED,
  ErrorCodes.WRONG_TYPE,
  ErrorCodes.UNAUTHENTICATED,
  ErrorCodes.TLS_REQUIRED,
  ErrorCodes.WRITE_REFUSED,
  ErrorCodes.SUSPECT_RANGE,
]);

/** True when a replica's error answer with `code` means it did not apply the operation. */
export function isNotAppliedCode(code: unknown): boolean {
  return typeof code === 'string' && NOT_APPLIED_CODES.has(code);
}

/** True when `code` is one of ringkv's stable codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && codeSet.has(code);
}

/**
 * Rebuilds a typed error from a code and message received over the wire, so that a
 * remote failure reaches application code as the same class a local one would.
 */
export function errorFromWire(code: unknown, message: unknown, details?: unknown): RingkvError {
  const c: ErrorCode = isErrorCode(code) ? code : ErrorCodes.INTERNAL;
  const m = typeof message === 'string' ? message : 'remote error';
  const d = details && typeof details === 'object' ? (details as Record<string, unknown>) : undefined;
  return new RingkvError(c, m, d);
}
