// The internal routes of users and roles (auth/README.md): auth-admin (user and role
// management: a node certificate or an admin's token), auth-sync (the user table between
// nodes: node certificates over TLS only) and whoami (who a token or certificate names).
// Kept only by nodes in tls mode required; handlers run concurrently.

import { UnavailableError } from '../../sdk/errors.js';
import { decodeMessage, MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { AuthAdminRequest, AuthSyncRequest } from '../auth/auth-service.js';
import { describeCaller } from '../auth/auth-service.js';
import type { NodeParts } from '../node-parts.js';
import { readBody } from './read-body.js';
import { sendMsgpack, sendMsgpackOrJson } from './respond.js';
import type { Route } from './router.js';

export function authRoutes(n: Pick<NodeParts, 'id' | 'config' | 'log' | 'auth'>): Route[] {
  return [
    {
      // User and role management (a node certificate, or an admin's token).
      name: 'auth-admin',
      path: Routes.authAdmin,
      methods: ['POST'],
      handle: async ({ req, res, caller }) => {
        if (!n.auth) throw new UnavailableError('users and roles are kept only by nodes in tls mode required (the table travels between node certificates)');
        const msg = decodeMessage<AuthAdminRequest>(await readBody(req, 64 * 1024));
        const result = await n.auth.handleAdmin(msg);
        const by = caller.kind === 'user' ? caller.principal.user : caller.kind === 'node' ? `node ${caller.id}` : 'anyone';
        if (!String(msg.action).endsWith('-list')) n.log.warn({ action: msg.action, name: msg.name, by }, 'user table changed by an operator');
        sendMsgpackOrJson(req, res, { v: MESSAGE_VERSION.authAdmin, node: n.id, ...result });
      },
    },
    {
      // The user table from a peer: a push, or a digest to compare (node certificates only).
      name: 'auth-sync',
      path: Routes.authSync,
      methods: ['POST'],
      handle: async ({ req, res }) => {
        if (!n.auth) throw new UnavailableError('this node keeps no user table (tls mode is not required)');
        const msg = decodeMessage<AuthSyncRequest>(await readBody(req, 16 * 1024 * 1024));
        sendMsgpack(res, 200, await n.auth.handleSync(msg));
      },
    },
    {
      name: 'whoami',
      path: Routes.whoami,
      handle: ({ req, res, caller }) => {
        sendMsgpackOrJson(req, res, { ...describeCaller(caller), node: n.id, authEnabled: n.config.auth.enabled });
      },
    },
  ];
}
