// What the SDK makes of a node that does not speak the protocol a call needs. A node of an
// older release answers a route it does not know `404 ROUTE_NOT_FOUND`, and a request of a
// newer version than its own `400 PROTOCOL_MISMATCH`; either becomes a ProtocolMismatchError
// that names the node, its address, the version it speaks and the one the call needs, so
// that the application and its operator read "upgrade node n2" rather than a generic failure
// (sdk/wire/wire-format.md: upgrade every server before clients). Pure functions.

import { ProtocolMismatchError, RingkvError } from './errors.js';

/** The call that met the node. */
export interface ProtocolNeed {
  /** The node's id and the address the call went to. */
  node: string;
  address: string;
  /** The route called, e.g. Routes.scan. */
  route: string;
  /** What the application was doing, for the message ("listing"). */
  what: string;
  /** The protocol version the request carried (`v`: the route's MESSAGE_VERSION). */
  sentProtocol: number;
  /** The protocol version the route came with (PROTOCOL_OF_ROUTE). */
  routeProtocol: number;
}

/**
 * The ProtocolMismatchError for `err` when it is a node's answer that it does not speak what
 * the call needs (ROUTE_NOT_FOUND or PROTOCOL_MISMATCH); undefined for any other error.
 * `details`: node, address, route, nodeAnswer (the code), needsProtocol and nodeProtocol.
 * For a 404 the node predates the route: needsProtocol is the route's version and
 * nodeProtocol the one before (the node is of that version or older). For PROTOCOL_MISMATCH
 * needsProtocol is the version sent and nodeProtocol the highest the node speaks, from the
 * answer's details (`max`) or, from nodes of protocol 5 and older which send none, its
 * message ("this side speaks 1..5"); absent when neither says.
 */
export function olderNodeError(err: unknown, need: ProtocolNeed): ProtocolMismatchError | undefined {
  if (!(err instanceof RingkvError)) return undefined;
  const where = `node ${need.node} (${need.address})`;
  const advice = 'upgrade every server before its clients (sdk/wire/wire-format.md)';
  const base = { node: need.node, address: need.address, route: need.route, nodeAnswer: err.code };
  if (err.code === 'ROUTE_NOT_FOUND') {
    const nodeProtocol = need.routeProtocol - 1;
    return new ProtocolMismatchError(
      `${where} does not know ${need.route}, which ${need.what} needs (protocol ${need.routeProtocol}): it is a server of protocol ${nodeProtocol} or older; ${advice}`,
      { ...base, needsProtocol: need.routeProtocol, nodeProtocol },
    );
  }
  if (err.code === 'PROTOCOL_MISMATCH') {
    const range = speaks(err);
    const versions = range ? `speaks protocol ${range.min}..${range.max}` : 'does not speak';
    return new ProtocolMismatchError(`${where} ${versions}, and ${need.what} sends protocol ${need.sentProtocol} (${need.route}); ${advice}`, {
      ...base,
      needsProtocol: need.sentProtocol,
      ...(range ? { nodeProtocol: range.max } : {}),
    });
  }
  return undefined;
}

/** The versions a PROTOCOL_MISMATCH answer says its node speaks: its details, else its message ("this side speaks 1..5"). */
function speaks(err: RingkvError): { min: number; max: number } | undefined {
  const min = err.details?.min;
  const max = err.details?.max;
  if (Number.isInteger(min) && Number.isInteger(max)) return { min: min as number, max: max as number };
  const m = /speaks (\d+)\.\.(\d+)/.exec(err.message);
  return m ? { min: Number(m[1]), max: Number(m[2]) } : undefined;
}
