// Latency bookkeeping of a load run: HdrHistograms (hdr-histogram-js) in microseconds,
// one per operation kind plus the overall one, error counts by code, and a per-second
// series. Recorders merge (runs of several loops or workers add up exactly: HdrHistogram
// addition loses nothing). Single-threaded; merge copies are independent of their sources.

import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import type { OpKind } from './workloads.js';
import { OP_KINDS } from './workloads.js';

/** Highest latency tracked before auto-resizing: 10 minutes in microseconds. */
const HIGHEST_MICROS = 600_000_000;

/** A histogram of microseconds with 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_MICROS, numberOfSignificantValueDigits: 3, autoResize: true });
}

/** A new histogram holding the sum of `hs`. */
export function mergeHistograms(hs: readonly Histogram[]): Histogram {
  const out = newHistogram();
  for (const h of hs) out.add(h);
  return out;
}

/** Percentiles of a histogram in milliseconds. */
export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

const ms = (micros: number) => Math.round(micros) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
  return {
    count: h.totalCount,
    meanMs: ms(h.mean),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
  };
}

/** What one second of a run saw: operations that completed in it, and their latencies. */
export interface SecondSlot {
  ok: number;
  errors: number;
  hist: Histogram;
}

export class LatencyRecorder {
  readonly overall = newHistogram();
  readonly byKind: Record<OpKind, Histogram> = { read: newHistogram(), update: newHistogram(), rmw: newHistogram(), incr: newHistogram() };
  errors = 0;
  readonly errorCodes = new Map<string, number>();
  /** How long failed operations took to fail (a system shedding load should fail them fast). */
  readonly errorLatency = newHistogram();
  /** Per-second slots by completion time, when `perSecond` was asked for. */
  readonly seconds: SecondSlot[] = [];

  constructor(private readonly perSecond = false) {}

  /** One successful operation of `kind` that took `micros`, completed `sinceStartMs` after the start. */
  record(kind: OpKind, micros: number, sinceStartMs: number): void {
    const v = micros < 1 ? 1 : Math.round(micros);
    this.overall.recordValue(v);
    this.byKind[kind].recordValue(v);
    if (this.perSecond) {
      const s = this.slot(sinceStartMs);
      s.ok++;
      s.hist.recordValue(v);
    }
  }

  /** One failed operation; `code` is the error's stable code (or its class name). */
  recordError(code: string, sinceStartMs: number, micros?: number): void {
    this.errors++;
    if (micros !== undefined) this.errorLatency.recordValue(micros < 1 ? 1 : Math.round(micros));
    this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
    if (this.perSecond) this.slot(sinceStartMs).errors++;
  }

  private slot(sinceStartMs: number): SecondSlot {
    const i = Math.max(0, Math.floor(sinceStartMs / 1000));
    while (this.seconds.length <= i) this.seconds.push({ ok: 0, errors: 0, hist: newHistogram() });
    return this.seconds[i]!;
  }

  /** Successful operations. */
  get count(): number {
    return this.overall.totalCount;
  }

  /** Adds everything `other` recorded into this recorder (per-second slots by index). */
  merge(other: LatencyRecorder): void {
    this.overall.add(other.overall);
    for (const k of OP_KINDS) this.byKind[k].add(other.byKind[k]);
    this.errors += other.errors;
    this.errorLatency.add(other.errorLatency);
    for (const [c, n] of other.errorCodes) this.errorCodes.set(c, (this.errorCodes.get(c) ?? 0) + n);
    for (let i = 0; i < other.seconds.length; i++) {
      const o = other.seconds[i]!;
      while (this.seconds.length <= i) this.seconds.push({ ok: 0, errors: 0, hist: newHistogram() });
      const s = this.seconds[i]!;
      s.ok += o.ok;
      s.errors += o.errors;
      s.hist.add(o.hist);
    }
  }

  /** The recorder as plain data (histograms as compressed base64) for files and worker messages. */
  toJSON(): EncodedRecorder {
    return {
      overall: hdr.encodeIntoCompressedBase64(this.overall),
      byKind: Object.fromEntries(OP_KINDS.map((k) => [k, hdr.encodeIntoCompressedBase64(this.byKind[k])])) as Record<OpKind, string>,
      errors: this.errors,
      errorLatency: hdr.encodeIntoCompressedBase64(this.errorLatency),
      errorCodes: Object.fromEntries(this.errorCodes),
      seconds: this.seconds.map((s) => ({ ok: s.ok, errors: s.errors, hist: hdr.encodeIntoCompressedBase64(s.hist) })),
    };
  }

  static fromJSON(e: EncodedRecorder): LatencyRecorder {
    const r = new LatencyRecorder(e.seconds.length > 0);
    r.overall.add(hdr.decodeFromCompressedBase64(e.overall));
    for (const k of OP_KINDS) r.byKind[k].add(hdr.decodeFromCompressedBase64(e.byKind[k]));
    r.errors = e.errors;
    if (e.errorLatency) r.errorLatency.add(hdr.decodeFromCompressedBase64(e.errorLatency));
    for (const [c, n] of Object.entries(e.errorCodes)) r.errorCodes.set(c, n);
    for (const s of e.seconds) r.seconds.push({ ok: s.ok, errors: s.errors, hist: mergeHistograms([hdr.decodeFromCompressedBase64(s.hist)]) });
    return r;
  }
}

export interface EncodedRecorder {
  overall: string;
  byKind: Record<OpKind, string>;
  errors: number;
  errorLatency?: string;
  errorCodes: Record<string, number>;
  seconds: { ok: number; errors: number; hist: string }[];
}
