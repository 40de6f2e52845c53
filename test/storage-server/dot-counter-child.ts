// The child process of dot-counter.test.ts: opens the DotCounter of a real directory and
// hands out counters from 4 concurrent issuers until it is SIGKILLed.
// Usage: node --import tsx dot-counter-child.ts <dir> <leaseBlock>
// Reports on file descriptor 3, one line each, written synchronously so that a line is in
// the pipe before the issuer asks for its next counter:
//   A <actor>      the counter is open
//   I <counter>    a counter was handed out (its promise resolved: a caller could use it)
//   E <message>    an issue or the open failed (then exit 1)

import fs from 'node:fs';
import path from 'node:path';
import { DotCounter } from '../../storage-server/dot-counter.js';

const REPORT_FD = 3;

function report(line: string): void {
  const buf = Buffer.from(line + '\n', 'latin1');
  let done = 0;
  while (done < buf.length) {
    try {
      done += fs.writeSync(REPORT_FD, buf, done, buf.length - done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

const [dir, block] = process.argv.slice(2);
try {
  const dots = await DotCounter.open(path.join(dir!, 'ACTOR'), path.join(dir!, 'ACTOR.tmp'), 'n1', { leaseBlock: Number(block) });
  report(`A ${dots.actor}`);
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (;;) {
        const [, counter] = await dots.issue();
        report(`I ${counter}`);
      }
    }),
  );
} catch (err) {
  report(`E ${(err as Error).message}`);
  process.exit(1);
}
