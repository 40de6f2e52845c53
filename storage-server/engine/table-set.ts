// A TableSet is one immutable view of the live tables (oldest first), like LevelDB's
// Version. Readers ref() the current set for the length of a get or a scan, so that a
// compaction can install a new set while they read; a table is closed (and, when
// compaction replaced it, deleted) only when the last set holding it is released.

import type { TableReader } from './table.js';

export class TableSet {
  private refs = 1;

  constructor(readonly tables: readonly TableReader[]) {
    for (const t of tables) t.ref();
  }

  ref(): this {
    this.refs++;
    return this;
  }

  unref(): void {
    if (--this.refs === 0) for (const t of this.tables) t.unref();
  }
}
