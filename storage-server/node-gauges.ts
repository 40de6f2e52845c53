// The gauges of a node's /metrics that read its parts when scraped: repair, hints, gossip,
// connections, admission, the ring, the user table, the embedded coordinator's hedges, the
// near cache's streams and the members by state (metrics.ts holds the counters and
// histograms). Registered once, at construction; read on the event loop.

import type { NodeParts } from './node-parts.js';

type Parts = Pick<
  NodeParts,
  'metrics' | 'replication' | 'antiEntropy' | 'store' | 'hints' | 'handoff' | 'membership' | 'connections' | 'shedder' | 'batches' | 'auth' | 'hotKeys' | 'client' | 'invalidations'
>;

export function registerNodeGauges(n: Parts): void {
  const m = n.metrics;
  if (n.replication.active) n.replication.registerMetrics(m);
  m.gauge('ringkv_repair_rounds', 'Anti-entropy rounds run since start', () => n.antiEntropy.totals.rounds);
  m.gauge('ringkv_repair_hashes_compared', 'Merkle hashes compared by repair rounds since start', () => n.antiEntropy.totals.hashesCompared);
  m.gauge('ringkv_repair_keys_exchanged', 'Keys reconciled by repair rounds since start', () => n.antiEntropy.totals.keysExchanged);
  m.gauge('ringkv_repair_last_hashes_compared', 'Hashes compared by the last repair round', () => n.antiEntropy.last?.hashesCompared ?? 0);
  m.gauge('ringkv_repair_last_keys_exchanged', 'Keys exchanged by the last repair round', () => n.antiEntropy.last?.keysExchanged ?? 0);
  m.gauge('ringkv_repair_last_duration_seconds', 'Duration of the last repair round', () => (n.antiEntropy.last?.durationMs ?? 0) / 1000);
  m.gauge('ringkv_repair_suspect_ranges_repaired', 'Suspect (quarantined) ranges of this node repaired by its repair rounds since start', () => n.antiEntropy.totals.suspectRangesRepaired);
  m.gauge('ringkv_suspect_gets', 'Gets answered SUSPECT_RANGE (the key is in a quarantined block) since start', () => n.store.counters.suspectGets);
  m.gauge('ringkv_suspect_writes', 'Writes over a key of a quarantined block (its repair) since start', () => n.store.counters.suspectWrites);
  m.gauge('ringkv_hints_pending', 'Hints held for other nodes', () => n.hints.totalPending);
  m.gauge('ringkv_hints_pending_bytes', 'Bytes of the hints held for other nodes (limited by maxHintBytes)', () => n.hints.pendingBytes);
  m.gauge('ringkv_hints_stored', 'Hints stored since start', () => n.hints.counters.stored);
  m.gauge('ringkv_hints_delivered', 'Hints delivered since start', () => n.handoff.counters.delivered);
  m.gauge('ringkv_hints_expired', 'Hints dropped at their age limit since start', () => n.hints.expired);
  m.gauge('ringkv_gossip_rounds', 'Gossip rounds since start', () => n.membership.counters.rounds);
  m.gauge('ringkv_connections_open', 'HTTP connections open', () => n.connections.openConnections);
  m.gauge('ringkv_connections_limit', 'HTTP connections accepted at most (maxConnections, within the open-files limit)', () => n.connections.limit);
  m.gauge('ringkv_connections_refused', 'Connections refused with 503 since start (over the limit)', () => n.connections.refused);
  m.gauge('ringkv_standing_delay_seconds', 'Delay every recent request saw from arrival to answer (admission control refuses requests with less time left)', () => n.shedder.standingDelayMs / 1000);
  m.gauge('ringkv_inflight_operations', 'Replica operations being applied', () => n.shedder.inflight);
  m.gauge('ringkv_ring_epoch', 'The ring epoch this node knows (sum of the members\' ring versions)', () => n.membership.ring.epoch);
  m.gauge('ringkv_ring_refused_writes', 'Write operations refused since start because they were routed on an older ring', () => n.batches.ringRefusals);
  m.gauge('ringkv_auth_users', 'Users in this node\'s copy of the user table', () => n.auth?.table.liveCounts.users ?? 0);
  m.gauge('ringkv_auth_table_records', 'Records (users, roles, removals) in this node\'s copy of the user table', () => n.auth?.table.size ?? 0);
  m.gauge('ringkv_auth_syncs', 'User table pulls completed since start', () => n.auth?.counters.syncs ?? 0);
  m.gauge('ringkv_auth_sync_failures', 'User table pulls failed since start', () => n.auth?.counters.syncFailures ?? 0);
  m.hotKeys(() => n.hotKeys.top(10));
  // The embedded client coordinates the public API's reads: its hedged reads (sdk/hedging.ts).
  m.gauge('ringkv_coordinator_hedges_sent', 'Hedged read requests the public API\'s coordinator sent since start', () => n.client?.hedgeCounters.sent ?? 0);
  m.gauge('ringkv_coordinator_hedges_won', 'Hedges whose answer completed the read, since start', () => n.client?.hedgeCounters.won ?? 0);
  m.gauge('ringkv_invalidation_streams', 'Near-cache invalidation streams open', () => n.invalidations.subscribers);
  m.gauge('ringkv_invalidation_tracked_keys', 'Keys tracked for near-cache invalidation streams', () => n.invalidations.trackedKeys);
  m.gauge('ringkv_invalidations_sent', 'Keys sent on invalidation streams since start (changed, or dropped from tracking)', () => n.invalidations.counters.invalidations);
  m.gauge('ringkv_members', 'Members by state, as this node sees them', () => {
    const counts = new Map<string, number>();
    for (const x of n.membership.members()) counts.set(x.state, (counts.get(x.state) ?? 0) + 1);
    return [...counts].map(([state, count]) => [{ state }, count]);
  });
}
