// The engine's errors. Each carries a stable code and structured details; the codes are the
// same strings as the SDK's codes for the same conditions (sdk/errors.ts), so the storage
// server maps an engine error to its typed SDK error by code (../engine-error-map.ts). The
// engine imports nothing outside its folder. Plain values, safe to share.

export const EngineErrorCodes = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  KEY_EMPTY: 'KEY_EMPTY',
  KEY_TOO_LARGE: 'KEY_TOO_LARGE',
  VALUE_TOO_LARGE: 'VALUE_TOO_LARGE',
  INVALID_METADATA: 'INVALID_METADATA',
  CLOSED: 'CLOSED',
  CORRUPTION: 'CORRUPTION',
  LOCKED: 'LOCKED',
  MANIFEST_MISSING: 'MANIFEST_MISSING',
  WRITE_FAILED: 'WRITE_FAILED',
  WRITE_REFUSED: 'WRITE_REFUSED',
  IO_ERROR: 'IO_ERROR',
  INTERNAL: 'INTERNAL',
} as const;

export type EngineErrorCode = (typeof EngineErrorCodes)[keyof typeof EngineErrorCodes];

const CODES = new Set<string>(Object.values(EngineErrorCodes));

export function isEngineErrorCode(code: unknown): code is EngineErrorCode {
  return typeof code === 'string' && CODES.has(code);
}

/** Base class of every error the engine throws. Match on `code`. */
export class EngineError extends Error {
  readonly code: EngineErrorCode;
  /** Extra structured facts (file, offset, errno, sizes…). */
  readonly details: Record<string, unknown> | undefined;
  /** True when the operation is known to have changed nothing (a write refused up front). */
  readonly notApplied: boolean;

  constructor(code: EngineErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown; notApplied?: boolean }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
    this.notApplied = options?.notApplied ?? false;
  }
}

export class InvalidArgumentError extends EngineError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(EngineErrorCodes.INVALID_ARGUMENT, message, details);
  }
}

export class KeyEmptyError extends EngineError {
  constructor() {
    super(EngineErrorCodes.KEY_EMPTY, 'key must not be empty');
  }
}

export class KeyTooLargeError extends EngineError {
  constructor(sizeBytes: number, limitBytes: number) {
    super(EngineErrorCodes.KEY_TOO_LARGE, `key is ${sizeBytes} bytes; the limit is ${limitBytes}`, { sizeBytes, limitBytes });
  }
}

export class ValueTooLargeError extends EngineError {
  constructor(sizeBytes: number, limitBytes: number) {
    super(EngineErrorCodes.VALUE_TOO_LARGE, `value is ${sizeBytes} bytes; the limit is ${limitBytes}`, { sizeBytes, limitBytes });
  }
}

export class InvalidMetadataError extends EngineError {
  constructor(message: string) {
    super(EngineErrorCodes.INVALID_METADATA, message);
  }
}

export class ClosedError extends EngineError {
  constructor(what: string) {
    super(EngineErrorCodes.CLOSED, `${what} is closed`);
  }
}

/** Stored data failed its checksum or could not be decoded. Names the file and offset. */
export class CorruptionError extends EngineError {
  constructor(message: string, details: { file: string; offset?: number; [k: string]: unknown }) {
    super(
      EngineErrorCodes.CORRUPTION,
      `corruption in ${details.file}${details.offset !== undefined ? ` at offset ${details.offset}` : ''}: ${message}`,
      details,
    );
  }
}

export class LockedError extends EngineError {
  constructor(dir: string, holder: string) {
    super(EngineErrorCodes.LOCKED, `data directory ${dir} is in use by ${holder}`, { dir, holder });
  }
}

export class ManifestMissingError extends EngineError {
  constructor(dir: string) {
    super(EngineErrorCodes.MANIFEST_MISSING, `data directory ${dir} holds data files but no MANIFEST; refusing to open it as empty`, { dir });
  }
}

/** A write failed part-way (its durability is unknown); the engine recovers before the next. */
export class WriteFailedError extends EngineError {
  constructor(message: string, cause?: unknown) {
    super(EngineErrorCodes.WRITE_FAILED, message, undefined, { cause });
  }
}

/**
 * The engine refused a write before writing anything (out of space or descriptors, or
 * recovering from a failed write); it retries by itself. `notApplied` is always true.
 */
export class WriteRefusedError extends EngineError {
  constructor(message: string, cause?: unknown, details?: Record<string, unknown>) {
    super(EngineErrorCodes.WRITE_REFUSED, message, details, { cause, notApplied: true });
  }
}

export class IoError extends EngineError {
  constructor(message: string, cause?: unknown, details?: Record<string, unknown>) {
    super(EngineErrorCodes.IO_ERROR, message, details, { cause });
  }
}
