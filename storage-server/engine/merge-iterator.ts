// Merges sorted streams of records into one sorted stream with one record per key: the
// one with the highest sequence number. Used by range scans and by compaction. Sources
// are consumed lazily; the number of sources is small (memtables + tables), so the
// smallest head is found by a linear pass rather than a heap.

import type { EngineRecord } from './record.js';

type Source = AsyncIterator<EngineRecord> | Iterator<EngineRecord>;

export async function* mergeNewest(sources: Source[]): AsyncGenerator<EngineRecord> {
  const heads: (EngineRecord | undefined)[] = [];
  for (const s of sources) heads.push(await next(s));
  try {
    for (;;) {
      let min: EngineRecord | undefined;
      for (const h of heads) {
        if (h && (!min || Buffer.compare(h.key, min.key) < 0)) min = h;
      }
      if (!min) return;
      let best = min;
      const key = min.key;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h && (h === min || h.key.equals(key))) {
          if (h.seq > best.seq) best = h;
          heads[i] = await next(sources[i]!);
        }
      }
      yield best;
    }
  } finally {
    for (const s of sources) await s.return?.();
  }
}

async function next(s: Source): Promise<EngineRecord | undefined> {
  const r = await s.next();
  return r.done ? undefined : r.value;
}
