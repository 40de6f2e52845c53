// Hand-written histories for the checkers' tests: one operation per line, in columns, so a test
// reads like the timeline it describes. Test helper only; pure.
//
//   c1 write  x a   0 10 ok            process, f, key, value ('-' = null), invokeMs, completeMs, outcome
//   c2 read   x a  20 30 ok  sib=a,b   optional: sib= siblings, ctx= context ('ctx=' alone: []), level=
//
// Ids are the line numbers among operation lines, from 1. Blank lines and '#' comments skipped.

import type { HistoryOp, OpFunction, Outcome } from './history.js';

const FUNCTIONS: readonly OpFunction[] = ['read', 'write', 'delete', 'insert'];
const OUTCOMES: readonly Outcome[] = ['ok', 'fail', 'unknown'];

export function history(text: string): HistoryOp[] {
  const ops: HistoryOp[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [process, f, key, value, invoke, complete, outcome, ...extra] = line.split(/\s+/);
    if (outcome === undefined) throw new Error(`history line needs 7 columns: ${line}`);
    if (!FUNCTIONS.includes(f as OpFunction)) throw new Error(`unknown function ${f}: ${line}`);
    if (!OUTCOMES.includes(outcome as Outcome)) throw new Error(`unknown outcome ${outcome}: ${line}`);
    const op: HistoryOp = {
      id: ops.length + 1,
      process: process!,
      f: f as OpFunction,
      key: key!,
      value: value === '-' ? null : value!,
      invokeMs: Number(invoke),
      completeMs: Number(complete),
      outcome: outcome as Outcome,
    };
    for (const e of extra) {
      const [name, list = ''] = e.split('=');
      const values = list === '' ? [] : list.split(',');
      if (name === 'sib') op.siblings = values;
      else if (name === 'ctx') op.context = values;
      else if (name === 'level') op.level = list;
      else throw new Error(`unknown column ${e}: ${line}`);
    }
    ops.push(op);
  }
  return ops;
}
