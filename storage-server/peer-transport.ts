// How a node talks to its peers: over HTTP from the address it is bound to (so peers and
// firewalls see the address it advertises), presenting its node certificate, and speaking
// TLS to each member that accepts it (its advertised mode; all of them in required mode).
// The mode per address is read from the member table and rebuilt after each change.
// Single-threaded.

import net from 'node:net';
import type { HttpTransportOptions } from '../sdk/transport.js';
import { HttpTransport } from '../sdk/transport.js';
import type { TlsMode } from '../sdk/transport-security.js';
import type { ServerConfig } from './config.js';
import type { Membership } from './membership/membership.js';
import type { NodeTlsMaterial } from './tls/node-tls.js';

/**
 * Options of the transport a server talks to its peers with. A server bound to one
 * specific IP address (a multi-homed host, or one loopback address of several) connects
 * from that address too, so that peers and firewalls see the address it advertises; one
 * bound to every address (0.0.0.0, ::) or to a host name lets the system choose.
 */
export function outgoingTransportOptions(host: string): HttpTransportOptions {
  const family = net.isIP(host);
  if (family === 0 || host === '0.0.0.0' || host === '::') return {};
  return { localAddress: host };
}

/** The HTTP transport to peers, by the rule every sender follows (the modes per address come later: usePeerModes). */
export function peerTransport(config: ServerConfig, tlsMaterial: NodeTlsMaterial | undefined): HttpTransport {
  return new HttpTransport({
    ...outgoingTransportOptions(config.host),
    tls: tlsMaterial && config.tls.mode !== 'off' ? { ca: tlsMaterial.ca, cert: tlsMaterial.cert, key: tlsMaterial.key, policy: config.tls.mode } : undefined,
  });
}

/** What each member's address accepts, from the member table; rebuilt after membership changes. */
export class PeerTlsModes {
  /** address -> what the member there accepts. */
  private byAddress: Map<string, TlsMode> | undefined;

  constructor(private readonly membership: Membership) {
    membership.onChange(() => {
      this.byAddress = undefined;
    });
  }

  /** What the member at `address` accepts (`off` when it advertises nothing); undefined for no member. */
  at(address: string): TlsMode | undefined {
    if (this.byAddress === undefined) {
      const map = new Map<string, TlsMode>();
      // A live member wins an address over a gone one that had it before.
      for (const m of this.membership.members()) {
        for (const a of [m.address, m.remoteAddress]) {
          if (a === undefined || (m.state === 'left' && map.has(a))) continue;
          map.set(a, m.tls ?? 'off');
        }
      }
      this.byAddress = map;
    }
    return this.byAddress.get(address);
  }
}
