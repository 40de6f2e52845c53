// Option parsers the benchmarks' command lines share (commander). Pure.

import { InvalidArgumentError } from 'commander';

/** A parser of a number option no smaller than `min`; a bad value is a usage error naming the option. */
export const num = (name: string, min = 0) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number >= ${min}`);
  return n;
};
