// The parts a storage node is built from — the public fields of the composition root
// (server.ts), documented there — as the modules that serve requests, report status and run
// admin actions see them: each takes the few it needs (Pick<NodeParts, ...>), so what a
// module depends on is written at its top. Parts are built once, in the server's
// constructor; `client` exists once the server started and `stopping` turns true when it
// stops. Single-threaded, like everything on a node's event loop.

import type { StorageServer } from './server.js';

export type NodeParts = Omit<StorageServer, 'stop'>;
