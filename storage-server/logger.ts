// The structured logger the server's mechanisms take (membership, hints, anti-entropy,
// streaming…): the four levels of pino with an object first; a pino logger or child fits.
// The engine has its own (engine/engine-options.ts, EngineLogger) so that it stands alone.

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
