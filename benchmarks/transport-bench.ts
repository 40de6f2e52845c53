// The ceiling of the transport alone: loopback HTTP/1.1 + msgpack with batching, the way
// the SDK talks to storage servers, with everything else taken out. Servers are minimal
// node:http processes that decode a batch and answer each operation with an object of the
// same shape and size a replica returns: the object for a Get, the timestamp for a Merge (no engine, no quorum logic, no versions).
// The client is a minimal undici + msgpack batcher of the SDK's shape: each logical
// operation goes to every replica (default 3) and completes when a quorum (default 2)
// answered; operations are coalesced per server into batches (at most 256 operations,
// 4 batches in flight, 8 keep-alive connections). Closed loop; prints a table and a JSON line,
// and saves both under benchmarks/results/.
//
//   npm run bench:transport -- --duration 10

import { Command, InvalidArgumentError } from 'commander';
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import type { BatchRequest, BatchResponse, WireOp, WireResult } from '../sdk/wire/protocol.js';
import { decodeMessage, encodeMessage, MSGPACK_CONTENT_TYPE, OpType, PROTOCOL_VERSION, Routes } from '../sdk/wire/protocol.js';
import type { StoredObject } from '../sdk/versioning/index.js';
import { newHistogram, summarize } from './harness/latency-recorder.js';
import { formatTable, machineInfo, saveResults, stamp } from './harness/report.js';
import { REPO_ROOT } from './harness/processes.js';
import path from 'node:path';

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

function storedObject(valueBytes: number, ts: number): StoredObject {
  return {
    mode: 'lww',
    siblings: [{ value: Buffer.alloc(valueBytes, 7), tombstone: false, expiresAtMs: 0, contentType: 'application/octet-stream', flags: 0, ts, writer: 'c-0123456789ab' }],
    context: {},
  };
}

// ---------------------------------------------------------------------------------------
// Server: decode, answer every op with an object, encode.

function serve(valueBytes: number): void {
  const stored = storedObject(valueBytes, Date.now() * 1000);
  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const batch = decodeMessage<BatchRequest>(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      // A Get answers with the stored object; a Merge with its newest timestamp only, as replicas do.
      const results = batch.ops.map((op): WireResult => (op.t === OpType.Merge ? { ok: true, obj: null, ts: op.obj.siblings[0]!.ts, created: false } as WireResult : { ok: true, obj: stored }));
      const body = encodeMessage({ v: PROTOCOL_VERSION, results } satisfies BatchResponse);
      res.writeHead(200, { 'content-type': MSGPACK_CONTENT_TYPE, 'content-length': body.length });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port }));
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'cpu') process.send?.({ type: 'cpu', usage: process.cpuUsage() });
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---------------------------------------------------------------------------------------
// Client: a per-server batcher of the SDK's shape.

interface Pending {
  op: WireOp;
  done: (r: WireResult | undefined) => void;
}

class MiniBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private inflight = 0;
  batches = 0;
  ops = 0;
  constructor(
    private readonly pool: Pool,
    private readonly maxOps: number,
    private readonly maxInflight: number,
  ) {}

  submit(op: WireOp, done: (r: WireResult | undefined) => void): void {
    this.queue.push({ op, done });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  private pump(): void {
    while (this.inflight < this.maxInflight && this.queue.length > 0) {
      const items = this.queue.splice(0, this.maxOps);
      this.inflight++;
      void this.send(items).finally(() => {
        this.inflight--;
        this.pump();
      });
    }
  }

  private async send(items: Pending[]): Promise<void> {
    this.batches++;
    this.ops += items.length;
    const req: BatchRequest = { v: PROTOCOL_VERSION, from: 'transport-bench', ops: items.map((i) => i.op) };
    try {
      const res = await this.pool.request({
        path: Routes.batch,
        method: 'POST',
        headers: { 'content-type': MSGPACK_CONTENT_TYPE, accept: MSGPACK_CONTENT_TYPE },
        body: encodeMessage(req),
      });
      const buf = Buffer.from(await res.body.arrayBuffer());
      const out = decodeMessage<BatchResponse>(buf);
      for (let i = 0; i < items.length; i++) items[i]!.done(out.results[i]);
    } catch {
      for (const it of items) it.done(undefined);
    }
  }
}

interface Variant {
  replicas: number;
  quorum: number;
}

async function runVariant(ports: number[], v: Variant, o: { durationMs: number; concurrency: number; valueBytes: number }) {
  const pools = ports.slice(0, v.replicas).map((p) => new Pool(`http://127.0.0.1:${p}`, { connections: 8, pipelining: 1, keepAliveTimeout: 30_000 }));
  const batchers = pools.map((p) => new MiniBatcher(p, 256, 4));
  const hist = newHistogram();
  const key = Buffer.from('ycsb:user0123456789');
  const obj = storedObject(o.valueBytes, Date.now() * 1000);
  const getOp: WireOp = { t: OpType.Get, key };
  const mergeOp: WireOp = { t: OpType.Merge, key, obj };
  let n = 0;
  let errors = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const op = n++ % 3 === 2 ? mergeOp : getOp; // 2 reads : 1 write
      let ok = 0;
      let failed = 0;
      let finished = false;
      for (const b of batchers) {
        b.submit(op, (r) => {
          if (finished) return;
          if (r?.ok) ok++;
          else failed++;
          if (ok >= v.quorum) {
            finished = true;
            resolve();
          } else if (failed > v.replicas - v.quorum) {
            finished = true;
            errors++;
            resolve();
          }
        });
      }
    });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  let done = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await one();
        hist.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
        done++;
      }
    }),
  );
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(pools.map((p) => p.close()));
  const batches = batchers.reduce((s, b) => s + b.batches, 0);
  const wireOps = batchers.reduce((s, b) => s + b.ops, 0);
  return {
    variant: `${v.replicas} replica${v.replicas > 1 ? 's' : ''}, quorum ${v.quorum}`,
    opsPerSec: Math.round((done * 1000) / elapsed),
    wireOpsPerSec: Math.round((wireOps * 1000) / elapsed),
    batchesPerSec: Math.round((batches * 1000) / elapsed),
    opsPerBatch: Math.round((wireOps / Math.max(1, batches)) * 10) / 10,
    clientCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
    errors,
    ...summarize(hist),
  };
}

function serverCpu(children: ChildProcess[]): Promise<number[]> {
  return Promise.all(
    children.map(
      (c) =>
        new Promise<number>((resolve) => {
          c.once('message', (m: { usage: NodeJS.CpuUsage }) => resolve((m.usage.user + m.usage.system) / 1000));
          c.send({ type: 'cpu' });
        }),
    ),
  );
}

async function main(): Promise<void> {
  const program = new Command()
    .name('transport-bench')
    .option('--serve', 'run as an echo server (internal)')
    .option('--duration <s>', 'seconds per variant', num('duration'), 10)
    .option('--concurrency <n>', 'logical operations in flight', num('concurrency'), 256)
    .option('--value-size <bytes>', 'value size', num('value-size'), 100)
    .option('--results-dir <dir>', 'where the results file is saved', path.join(REPO_ROOT, 'benchmarks/results'))
    .option('--no-save', 'do not save the results file')
    .parse();
  const f = program.opts<{ serve?: boolean; duration: number; concurrency: number; valueSize: number; resultsDir: string; save: boolean }>();
  if (f.serve) {
    serve(f.valueSize);
    return;
  }
  const children: ChildProcess[] = [];
  const stopAll = () => Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r) && c.kill('SIGTERM')) : undefined)));
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(130)));
  process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const c = fork(fileURLToPath(import.meta.url), ['--serve', '--value-size', String(f.valueSize)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(c);
    ports.push(await new Promise<number>((resolve) => c.once('message', (m: { port: number }) => resolve(m.port))));
  }
  const machine = machineInfo();
  const when = new Date();
  process.stdout.write(
    `transport-bench: loopback HTTP/1.1 + msgpack batches, ${f.concurrency} logical ops in flight, 2 reads : 1 write, ${f.valueSize} B values, ${f.duration} s per variant; ${machine.cores} cores, node ${machine.node}\n`,
  );
  const results = [];
  for (const v of [
    { replicas: 3, quorum: 2 },
    { replicas: 1, quorum: 1 },
  ]) {
    const cpu0 = await serverCpu(children);
    const r = await runVariant(ports, v, { durationMs: f.duration * 1000, concurrency: f.concurrency, valueBytes: f.valueSize });
    const cpu1 = await serverCpu(children);
    const serverCpuPct = cpu1.map((c, i) => Math.round(((c - cpu0[i]!) / (f.duration * 1000)) * 100));
    results.push({ ...r, serverCpuPct });
    await new Promise((res) => setTimeout(res, 500));
  }
  await stopAll();
  const table = formatTable(
      ['variant', 'ops/s', 'wire ops/s', 'batches/s', 'ops/batch', 'p50 ms', 'p99 ms', 'client CPU', 'server CPU'],
      results.map((r) => [r.variant, r.opsPerSec.toLocaleString('en-US'), r.wireOpsPerSec.toLocaleString('en-US'), r.batchesPerSec.toLocaleString('en-US'), String(r.opsPerBatch), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), `${r.clientCpuPct}%`, r.serverCpuPct.map((x) => `${x}%`).join(' ')]),
    );
  process.stdout.write(`${table}\n`);
  const sdkShape = results[0]!;
  const line: Record<string, unknown> = {
    benchmark: 'transport',
    opsPerSec: sdkShape.opsPerSec,
    p50Ms: sdkShape.p50Ms,
    p99Ms: sdkShape.p99Ms,
    variants: results,
    concurrency: f.concurrency,
    valueBytes: f.valueSize,
    cores: machine.cores,
    loadAverage: { before: machine.loadAverage, after: machineInfo().loadAverage },
  };
  if (f.save) {
    const [file] = saveResults(f.resultsDir, `${stamp(when)}-transport-${machine.cores}cores`, {
      date: when.toISOString(),
      command: `npm run bench:transport -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine,
      params: { duration: f.duration, concurrency: f.concurrency, valueSize: f.valueSize },
      table: table.split('\n'),
      json: line,
    });
    process.stdout.write(`saved ${path.relative(process.cwd(), file!)}\n`);
    line.resultsFile = path.relative(REPO_ROOT, file!);
  }
  process.stdout.write(JSON.stringify(line) + '\n');
  process.exit(0);
}

await main();
