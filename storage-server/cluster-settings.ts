// The cluster-wide settings every node must share (vnodes per node, replicas per data
// center): what this node announces in gossip, and the check at start against its seeds
// (SETTINGS_MISMATCH: a node with other settings would place keys where the cluster does
// not). Gossip refuses a mismatched peer later all the same (membership.ts). Stateless.

import { SettingsMismatchError } from '../sdk/errors.js';
import type { ClusterSettings, MembersView } from '../sdk/membership.js';
import { DEFAULT_DC, describeSettings, sameSettings } from '../sdk/membership.js';
import type { Transport } from '../sdk/transport.js';
import { Routes } from '../sdk/wire/protocol.js';
import type { ServerConfig } from './config.js';

/**
 * The cluster-wide settings a node serves: a single-data-center node's as they always were
 * (no replication map), else with the replicas per data center.
 */
export function clusterSettingsOf(config: ServerConfig): ClusterSettings {
  const s: ClusterSettings = { vnodesPerNode: config.vnodesPerNode, replicationFactor: config.replicationFactor };
  const dcs = Object.keys(config.replication);
  if (dcs.length > 1 || dcs[0] !== DEFAULT_DC) s.replication = { ...config.replication };
  return s;
}

/**
 * Refuses to start (SETTINGS_MISMATCH) when a seed that answers has other cluster-wide
 * settings than `own`. Seeds that do not answer within 2 s (the first node of a cluster, a
 * data center out of reach) are not waited for.
 */
export async function checkSettingsWithSeeds(transport: Transport, config: ServerConfig, own: ClusterSettings): Promise<void> {
  const timeoutMs = Math.min(2000, config.requestTimeoutMs);
  const seeds = config.seeds.filter((s) => s !== config.advertise);
  const answers = await Promise.all(
    seeds.map((seed) =>
      transport.call<MembersView>(seed, Routes.members, undefined, { timeoutMs }).then(
        (view) => ({ seed, view }),
        () => undefined,
      ),
    ),
  );
  for (const a of answers) {
    const theirs = a?.view?.settings;
    if (!a || !theirs || sameSettings(theirs, own)) continue;
    throw new SettingsMismatchError(
      `seed ${a.seed} (node ${String(a.view.self)}) has the cluster settings ${describeSettings(theirs)}, this node ${describeSettings(own)}: they must be the same on every node`,
      { seed: a.seed, theirs, ours: own },
    );
  }
}
