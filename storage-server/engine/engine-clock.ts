// The engine's clock seam: TTL expiry and tombstone grace read time through it, so tests age
// data deterministically. Any object with nowMs() fits (the SDK's clocks do). Synchronous.

/** Wall-clock time in milliseconds since the Unix epoch. */
export interface EngineClock {
  nowMs(): number;
}

/** The real clock. */
export const systemClock: EngineClock = {
  nowMs: () => Date.now(),
};
