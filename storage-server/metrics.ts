// Prometheus metrics of one storage server, in its own registry (several servers may live
// in one process in tests). Request counts and latency histograms per operation; engine
// gauges are read from the engine when scraped; prom-client's process metrics (event-loop
// lag, GC pauses, heap, CPU) beside them.

import client from 'prom-client';
import type { Engine } from './engine/index.js';
import type { HotKeysReport } from './hot-keys.js';

const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class ServerMetrics {
  readonly registry = new client.Registry();
  readonly httpRequests: client.Counter<'route' | 'method' | 'status'>;
  readonly httpLatency: client.Histogram<'route' | 'method'>;
  readonly replicaOps: client.Counter<'op' | 'outcome'>;
  readonly replicaOpLatency: client.Histogram<'op'>;
  readonly batchSize: client.Histogram;
  readonly shedRequests: client.Counter;
  readonly connectionsAccepted: client.Counter<'transport'>;
  readonly tlsHandshakeFailures: client.Counter<'reason'>;
  readonly authRefusals: client.Counter<'code' | 'what'>;
  /** Extra gauges other modules register (membership, hints, repair). */
  readonly collectors: (() => void)[] = [];

  constructor(nodeId: string, engine: () => Engine | undefined) {
    this.registry.setDefaultLabels({ node: nodeId });
    // The process's own figures, as every Node service exports them: event-loop lag (a
    // request waits behind whatever holds the loop), GC pauses by kind, heap, CPU, fds.
    client.collectDefaultMetrics({ register: this.registry, gcDurationBuckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25] });
    this.httpRequests = new client.Counter({
      name: 'ringkv_http_requests_total',
      help: 'HTTP requests served, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [this.registry],
    });
    this.httpLatency = new client.Histogram({
      name: 'ringkv_http_request_duration_seconds',
      help: 'HTTP request latency, by route and method',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS_S,
      registers: [this.registry],
    });
    this.replicaOps = new client.Counter({
      name: 'ringkv_replica_operations_total',
      help: 'Replica operations applied from batch requests, by operation and outcome',
      labelNames: ['op', 'outcome'],
      registers: [this.registry],
    });
    this.replicaOpLatency = new client.Histogram({
      name: 'ringkv_replica_operation_duration_seconds',
      help: 'Time to apply a batch of replica operations, per kind of operation it carried (engine reads, merges, writes)',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS_S,
      registers: [this.registry],
    });
    this.batchSize = new client.Histogram({
      name: 'ringkv_batch_operations',
      help: 'Operations per internal batch request',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [this.registry],
    });
    this.shedRequests = new client.Counter({
      name: 'ringkv_shed_requests_total',
      help: 'Requests refused with 503 OVERLOADED by admission control (they could not be answered in time)',
      registers: [this.registry],
    });
    this.connectionsAccepted = new client.Counter({
      name: 'ringkv_connections_accepted_total',
      help: 'Connections that reached HTTP, by transport (tls or plain)',
      labelNames: ['transport'],
      registers: [this.registry],
    });
    this.tlsHandshakeFailures = new client.Counter({
      name: 'ringkv_tls_handshake_failures_total',
      help: 'Connections refused at the TLS level, by reason: a TLS error code, a client certificate check that failed (CERT_HAS_EXPIRED ...), or plain_http to a node that requires TLS',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.authRefusals = new client.Counter({
      name: 'ringkv_auth_refusals_total',
      help: 'Requests (what=request) and batch operations (what=operation) refused for authentication (UNAUTHENTICATED) or permissions (PERMISSION_DENIED)',
      labelNames: ['code', 'what'],
      registers: [this.registry],
    });
    const self = this;
    const gauge = (name: string, help: string, read: (e: Engine) => number) =>
      new client.Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const e = engine();
          if (e) this.set(read(e));
        },
      });
    gauge('ringkv_engine_tables', 'SSTables live', (e) => e.stats().tableCount);
    gauge('ringkv_engine_table_bytes', 'Bytes in live SSTables', (e) => e.stats().tableBytes);
    gauge('ringkv_engine_memtable_bytes', 'Bytes in memtables', (e) => e.stats().memtableBytes);
    gauge('ringkv_engine_entries_approximate', 'Entries in memtables and tables (with shadowed versions)', (e) => e.stats().approximateEntries);
    gauge('ringkv_engine_block_cache_bytes', 'Bytes in the block cache', (e) => e.stats().blockCacheBytes);
    gauge('ringkv_engine_pinned_bytes', 'Bytes the live SSTables keep in memory (bloom filters and block indexes)', (e) => e.stats().pinnedBytes);
    gauge('ringkv_engine_compactions', 'Compactions done since start', (e) => e.stats().compactions);
    gauge('ringkv_engine_compaction_bytes_written', 'Bytes written by compactions since start', (e) => e.stats().compactionBytesWritten);
    gauge('ringkv_engine_flushes', 'Memtable flushes since start', (e) => e.stats().flushes);
    gauge('ringkv_engine_wal_syncs', 'WAL fdatasyncs since start', (e) => e.stats().walSyncs);
    gauge('ringkv_engine_write_stalls', 'Writes that waited for a flush since start', (e) => e.stats().writeStalls);
    gauge('ringkv_engine_block_reads', 'Data blocks read from disk by gets since start', (e) => e.stats().blockReads);
    // The engine's health (engine/engine-health.ts): its state as one gauge per state (1 for
    // the current one), errors by source and errno, and what healed by itself.
    const labelled = (name: string, help: string, labelNames: string[], read: (e: Engine) => [Record<string, string>, number][]) =>
      new client.Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          const e = engine();
          if (!e) return;
          this.reset();
          for (const [labels, n] of read(e)) this.set(labels, n);
        },
      });
    labelled('ringkv_engine_state', 'The engine state: 1 for the current one of ok, degraded-retrying, recovering, failed', ['state'], (e) => {
      const cur = e.health().state;
      return (['ok', 'degraded-retrying', 'recovering', 'failed'] as const).map((s) => [{ state: s }, s === cur ? 1 : 0]);
    });
    labelled('ringkv_engine_errors_total', 'I/O errors the engine met since open, by source (wal, flush, compaction, recovery) and errno (or error code)', ['source', 'errno'], (e) =>
      Object.entries(e.health().errors).map(([k, n]) => {
        const [source, errno] = k.split(':') as [string, string];
        return [{ source, errno }, n];
      }),
    );
    gauge('ringkv_engine_writes_refused', '1 while the engine refuses writes (a soft error being retried, a recovery, failed)', (e) => (e.health().writesRefused ? 1 : 0));
    gauge('ringkv_engine_error_retries', 'Background retries made in the current error episode', (e) => e.health().retries);
    gauge('ringkv_engine_auto_resumes', 'Times writes resumed by themselves after a soft error (no space, no descriptors) since open', (e) => e.health().autoResumes);
    gauge('ringkv_engine_recoveries', 'Internal reopens of the write path after a failed fsync or EIO since open', (e) => e.health().recoveries);
    labelled('ringkv_engine_quarantined_blocks', 'Data blocks quarantined after a checksum failure, by whether their keys are repaired yet', ['repaired'], (e) => {
      const q = e.quarantine();
      return [
        [{ repaired: 'false' }, q.filter((b) => !b.repaired).length],
        [{ repaired: 'true' }, q.filter((b) => b.repaired).length],
      ];
    });
    gauge('ringkv_engine_corrupt_blocks', 'Data blocks found corrupt (checksum failures) since open', (e) => e.stats().corruptBlocks);
    gauge('ringkv_engine_corrupt_blocks_dropped', 'Quarantined blocks dropped by compactions (after their keys were repaired) since open', (e) => e.stats().corruptBlocksDropped);
    void self;
  }

  /** Registers a gauge whose value is read when scraped (for counters kept by other modules). */
  gauge(name: string, help: string, read: () => number | [Record<string, string>, number][]): void {
    new client.Gauge({
      name,
      help,
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const v = read();
        if (typeof v === 'number') this.set(v);
        else {
          this.reset();
          for (const [labels, n] of v) this.set(labels, n);
        }
      },
    });
  }

  /**
   * The hot keys: `ringkv_hot_key_operations{rank, key}` for the top keys of the window
   * (the key as hot-keys.ts displays it: escaped, cut at 48 characters; `rank` keeps two
   * keys cut to the same label apart), so at most as many series as the report has keys
   * at each scrape; and the window they cover.
   */
  hotKeys(read: () => HotKeysReport): void {
    new client.Gauge({
      name: 'ringkv_hot_key_operations',
      help: 'Estimated operations on the keys this node served most in the hot-key window (top 10; key escaped and cut)',
      labelNames: ['rank', 'key'],
      registers: [this.registry],
      collect() {
        this.reset();
        read().keys.forEach((k, i) => this.set({ rank: String(i + 1), key: k.display }, k.count));
      },
    });
    new client.Gauge({
      name: 'ringkv_hot_key_window_seconds',
      help: 'The time the hot-key counts cover',
      registers: [this.registry],
      collect() {
        this.set(read().windowMs / 1000);
      },
    });
  }

  /** Registers a gauge with labels, whose samples are read when scraped. */
  labeledGauge<L extends string>(name: string, help: string, labelNames: readonly L[], read: () => [Record<L, string>, number][]): void {
    new client.Gauge({
      name,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, n] of read()) this.set(labels as Partial<Record<string, string>>, n);
      },
    });
  }

  /** Registers a histogram (observed by the module that owns it). */
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): client.Histogram<L> {
    return new client.Histogram<L>({ name, help, labelNames: [...labelNames], buckets, registers: [this.registry] });
  }

  async text(): Promise<string> {
    for (const c of this.collectors) c();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
