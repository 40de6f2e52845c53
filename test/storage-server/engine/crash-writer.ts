// The child process of crash.test.ts: opens an Engine on a real directory and writes
// until it is SIGKILLed. Usage: node --import tsx crash-writer.ts <dir> <seed> <start,start,...>
// (one start write number per writer), then optionally <walRecycleSegments> (default 0). Reports to the parent on file descriptor 3, one
// line each, written synchronously so a line is in the pipe before the next step:
//   O                  about to open the engine
//   R                  engine open, writers starting
//   A <w> <s>          writer w's write s was acknowledged (its promise resolved)
//   S <flushes> <compactions> <walSyncs> <writeGroups> <tables>   engine stats, every 100 ms
//   E <message>        a write or the open failed (then exit 1)
// When the parent is gone, the next report fails (EPIPE) and the child exits.
// Each writer awaits its write and reports the ack before issuing the next write, so at
// most one write per writer is ever in flight without the parent having seen its ack.

import fs from 'node:fs';
import { Engine } from '../../../storage-server/engine/index.js';
import type { WriteOp } from '../../../storage-server/engine/index.js';
import { opsFor, valueFor, versionBytes, WRITERS } from './crash-workload.js';

const REPORT_FD = 3;

function report(line: string): void {
  const buf = Buffer.from(line + '\n', 'latin1');
  let done = 0;
  while (done < buf.length) {
    try {
      done += fs.writeSync(REPORT_FD, buf, done, buf.length - done);
    } catch (err) {
      // A full non-blocking pipe: wait a moment and retry; anything else is fatal.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

function fail(err: unknown): never {
  const e = err as Error & { code?: string };
  try {
    report(`E ${e?.code ?? ''} ${String(e?.stack ?? e).replace(/\n/g, ' | ')}`);
  } finally {
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const [dir, seedArg, startsArg, recycleArg] = process.argv.slice(2);
  if (!dir || !seedArg || !startsArg) throw new Error('usage: crash-writer.ts <dir> <seed> <start,start,...>');
  const seed = Number(seedArg);
  const starts = startsArg.split(',').map(Number);
  if (starts.length !== WRITERS || starts.some((s) => !Number.isSafeInteger(s) || s < 1)) throw new Error(`need ${WRITERS} start numbers`);

  report('O');
  const engine = await Engine.open(dir, {
    sync: 'batch',
    memtableSizeBytes: 64 * 1024,
    // Unthrottled, so compactions start and finish (and get interrupted) within a round.
    compactionRateBytesPerSec: 0,
    walRecycleSegments: Number(recycleArg ?? 0),
  });
  report('R');

  // Also a heartbeat: once the parent is gone the write fails (EPIPE) and the child exits.
  setInterval(() => {
    const s = engine.stats();
    try {
      report(`S ${s.flushes} ${s.compactions} ${s.walSyncs} ${s.writeGroups} ${s.tableCount}`);
    } catch {
      process.exit(1);
    }
  }, 100);

  const writer = async (w: number): Promise<never> => {
    for (let s = starts[w]!; ; s++) {
      const ops = opsFor(seed, w, s);
      if (ops.length === 1) {
        const op = ops[0]!;
        const key = Buffer.from(op.key, 'latin1');
        if (op.type === 'put') await engine.put(key, valueFor(op.key, s), { version: versionBytes(s) });
        else await engine.delete(key, { version: versionBytes(s) });
      } else {
        await engine.write(
          ops.map((op): WriteOp => {
            const key = Buffer.from(op.key, 'latin1');
            return op.type === 'put'
              ? { type: 'put', key, value: valueFor(op.key, s), version: versionBytes(s) }
              : { type: 'del', key, version: versionBytes(s) };
          }),
        );
      }
      report(`A ${w} ${s}`);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
}

main().catch(fail);
