// A nemesis client worker: a separate Node process that connects to the cluster with the
// SDK (from its own loopback address inside the runner's namespace), runs the workload the
// runner assigns with one or more logical clients, and sends each completed operation to
// the runner over IPC. Its SDK clock is a SkewedClock the runner moves (client clock skew);
// history timestamps use the monotonic clock, never the skewed one. Exits when the runner
// says stop or disconnects.

import { connect } from '../../sdk/client.js';
import type { Consistency } from '../../sdk/consistency.js';
import { SkewedClock, systemClock } from '../../sdk/clock.js';
import { HttpTransport } from '../../sdk/transport.js';
import { SeededRandom } from '../sdk/seeded-random.js';
import type { FromWorker, ToWorker, WorkerConfig } from './workloads.js';
import { errorCode, runClient } from './workloads.js';

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

async function main(cfg: WorkerConfig, go: Promise<void>, stopped: () => boolean): Promise<void> {
  const clock = new SkewedClock(systemClock, 0);
  skewTarget = clock;
  const transport = new HttpTransport({ connectTimeoutMs: 500, ...(cfg.localAddress ? { localAddress: cfg.localAddress } : {}) });
  let kv;
  try {
    kv = await connect({
      seeds: cfg.seeds,
      valueEncoding: 'utf8',
      consistency: cfg.level as Consistency,
      conflictMode: cfg.conflictMode,
      timeoutMs: cfg.timeoutMs,
      clientId: `w${cfg.worker}`,
      transport,
      clock,
    });
  } catch (err) {
    await transport.close();
    send({ type: 'fatal', code: errorCode(err), message: (err as Error).message });
    return;
  }
  try {
    send({ type: 'ready' });
    await go;
    await Promise.all(
      cfg.clients.map((name, i) =>
        runClient({ kv, cfg, name, rng: new SeededRandom((cfg.seed + cfg.worker * 7919 + i * 104_729) >>> 0), emit: (op) => send({ type: 'op', op }), stopped }),
      ),
    );
  } finally {
    await kv.close().catch(() => undefined);
    await transport.close().catch(() => undefined);
  }
}

let skewTarget: SkewedClock | undefined;
let stop = false;
let startGo!: () => void;
const go = new Promise<void>((r) => (startGo = r));

process.on('disconnect', () => process.exit(0));
process.on('message', (m: ToWorker) => {
  if (m.type === 'start') {
    // The last message's callback runs once it (and so every operation before it) is
    // written to the channel; only then is it safe to exit.
    const last = (msg: FromWorker) => {
      if (!process.connected) process.exit(0);
      process.send!(msg, () => process.exit(0));
    };
    main(m.cfg, go, () => stop).then(
      () => last({ type: 'stopped' }),
      (err: unknown) => last({ type: 'fatal', code: errorCode(err), message: (err as Error)?.stack ?? String(err) }),
    );
  } else if (m.type === 'go') {
    startGo();
  } else if (m.type === 'skew') {
    if (skewTarget) skewTarget.skewMs = m.ms;
  } else if (m.type === 'stop') {
    stop = true;
    startGo();
  }
});
