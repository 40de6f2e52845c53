// The crash test's workload, shared by the writer (crash-writer.ts, the child that gets
// killed) and the checker (crash.test.ts): which operations writer w issues as its s-th
// write, and the value format, both pure functions of (seed, w, s) so the checker can
// recompute any write from the acknowledgement "writer w finished write s" alone.
// Everything here is synchronous and stateless; safe to call from anywhere.

import { fmix32 } from '../../../benchmarks/harness/mix32.js';

export { fmix32 };

/** Concurrent writers in the child; each owns its own keys, so keys never race across writers. */
export const WRITERS = 32;
/** Keys per writer: few enough that overwrites and deletes of live keys are common. */
export const KEYS_PER_WRITER = 64;

export interface WorkOp {
  type: 'put' | 'del';
  key: string;
  /** The writer's write number; also stored as the record's version metadata. */
  version: number;
}

/** A small seeded PRNG (mulberry32) returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function keyName(w: number, n: number): string {
  return `k${w}-${n}`;
}

/** Every key the workload can touch. */
export function allKeys(): string[] {
  const keys: string[] = [];
  for (let w = 0; w < WRITERS; w++) for (let n = 0; n < KEYS_PER_WRITER; n++) keys.push(keyName(w, n));
  return keys;
}

/** Writer index encoded in a workload key, or -1 when `key` is not one. */
export function writerOf(key: string): number {
  const m = /^k(\d+)-(\d+)$/.exec(key);
  if (!m) return -1;
  const w = Number(m[1]);
  const n = Number(m[2]);
  return w < WRITERS && n < KEYS_PER_WRITER ? w : -1;
}

/**
 * The s-th write of writer w: usually one put (80%) or delete (20%); one in ten is an
 * atomic batch of 2-4 operations on distinct keys of the writer.
 */
export function opsFor(seed: number, w: number, s: number): WorkOp[] {
  const rnd = prng(fmix32(fmix32((seed ^ Math.imul(w + 1, 0x9e3779b1)) >>> 0) ^ Math.imul(s, 0x27d4eb2f)));
  const count = rnd() < 0.1 ? 2 + Math.floor(rnd() * 3) : 1;
  const ops: WorkOp[] = [];
  const used = new Set<number>();
  while (ops.length < count) {
    const n = Math.floor(rnd() * KEYS_PER_WRITER);
    if (used.has(n)) continue;
    used.add(n);
    ops.push({ type: rnd() < 0.2 ? 'del' : 'put', key: keyName(w, n), version: s });
  }
  return ops;
}

function strHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** The value written for `key` at `version`: "key|version|" and 16-255 filler characters derived from both. */
export function valueFor(key: string, version: number): Buffer {
  let h = fmix32(strHash(key) ^ Math.imul(version, 0x9e3779b1)) || 1;
  const len = 16 + (h % 240);
  let s = `${key}|${version}|`;
  for (let i = 0; i < len; i++) {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    h >>>= 0;
    s += ALPHABET[h % ALPHABET.length];
  }
  return Buffer.from(s, 'latin1');
}

/** The version metadata stored with each put and delete. */
export function versionBytes(version: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(version, 0);
  return b;
}

/**
 * Checks that `value` (and the record's `version` metadata) is exactly what the writer
 * writes for `key`; returns the version, or a string saying what is wrong.
 */
export function checkValue(key: string, value: Buffer, version: Buffer): number | string {
  const text = value.toString('latin1');
  const m = /^([^|]*)\|(\d+)\|/.exec(text);
  if (!m) return `value ${JSON.stringify(text.slice(0, 40))} is not in the writer's format`;
  if (m[1] !== key) return `value names key ${m[1]}`;
  const v = Number(m[2]);
  if (!valueFor(key, v).equals(value)) return `value of version ${v} has the wrong filler or length (${value.length} bytes)`;
  if (version.length !== 4 || version.readUInt32BE(0) !== v) return `version metadata ${version.toString('hex')} does not match value version ${v}`;
  return v;
}
