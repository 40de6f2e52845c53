// Every route a node serves, by area, in one table (the router looks requests up in it):
// the public API, the internal endpoints of replicas, membership, anti-entropy, streaming,
// replication, admin and users, the status and monitoring pages, and the dashboard. Who
// may call each is the access policy's table (access-policy.ts), checked by the router
// before any handler. Built once per server; handlers read the parts when called.

import type { NodeParts } from '../node-parts.js';
import { adminRoutes } from './admin-routes.js';
import { antiEntropyRoutes } from './anti-entropy-routes.js';
import { authRoutes } from './auth-routes.js';
import { gossipRoutes } from './gossip-routes.js';
import { internalReplicaRoutes } from './internal-replica-routes.js';
import { publicApiRoutes } from './public-api-routes.js';
import { replicationRoutes } from './replication-routes.js';
import type { Route } from './router.js';
import { uiRoute } from './static-ui.js';
import { statusRoutes } from './status-routes.js';
import { streamRoutes } from './stream-routes.js';

export function routeTable(n: NodeParts): Route[] {
  return [
    ...publicApiRoutes(n),
    ...internalReplicaRoutes(n),
    ...gossipRoutes(n),
    ...antiEntropyRoutes(n),
    ...streamRoutes(n),
    ...replicationRoutes(n),
    ...adminRoutes(n),
    ...authRoutes(n),
    ...statusRoutes(n),
    uiRoute(),
  ];
}
