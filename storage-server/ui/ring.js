// The ring's placement recomputed in the browser from the members list, by the same rules
// as sdk/ring.ts (test/ui/ring-math.test.ts checks that they agree): vnode i of node `id`
// sits at token murmur3(`${id}#${i}`, 0) for i < max(1, round(vnodesPerNode × weight));
// equal tokens are ordered by node id; vnode token t owns the range (previous token, t] and
// the first token also owns the range that wraps past 2^32 - 1. Pure functions.

import { murmur3 } from './murmur3.js';

export const TOKEN_SPACE = 2 ** 32;

/** True when the member holds data in the current ring (as sdk/membership.ts inRing). */
export function inRing(m) {
  return m.state !== 'left' && m.state !== 'joining';
}

/** Code-unit order, as the SDK sorts ids (not localeCompare). */
export function compareIds(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The sorted vnode tokens of `members` ({id, weight}).
 * @returns {{token: number, node: string}[]}
 */
export function ringTokens(members, vnodesPerNode) {
  const sorted = [...members].sort((a, b) => compareIds(a.id, b.id));
  const rank = new Map(sorted.map((m, i) => [m.id, i]));
  const list = [];
  for (const m of sorted) {
    const count = Math.max(1, Math.round(vnodesPerNode * (m.weight ?? 1)));
    for (let i = 0; i < count; i++) list.push({ token: murmur3(`${m.id}#${i}`, 0), node: m.id });
  }
  list.sort((a, b) => a.token - b.token || rank.get(a.node) - rank.get(b.node));
  return list;
}

/** Width of the range owned by tokens[i]: (tokens[i - 1], tokens[i]], wrapping for i = 0. */
function rangeWidth(tokens, i) {
  const len = tokens.length;
  return i === 0 ? TOKEN_SPACE - tokens[len - 1].token + tokens[0].token : tokens[i].token - tokens[i - 1].token;
}

/**
 * Each member's primary share of the token space (fractions summing to 1).
 * @returns {Map<string, number>}
 */
export function ownership(members, vnodesPerNode) {
  const out = new Map(members.map((m) => [m.id, 0]));
  const tokens = ringTokens(members, vnodesPerNode);
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i].node;
    out.set(id, out.get(id) + rangeWidth(tokens, i) / TOKEN_SPACE);
  }
  return out;
}

/**
 * The ring as arcs for drawing: runs of consecutive ranges with the same owner merged into
 * one arc {node, start, end}, start < end, in token units; an arc across the wrap point
 * has start < 0 or end > 2^32 (angles are taken modulo the token space).
 * @returns {{node: string, start: number, end: number}[]}
 */
export function ringArcs(tokens) {
  const len = tokens.length;
  if (len === 0) return [];
  const arcs = [];
  // Range i is (tokens[i - 1], tokens[i]]; walk them from the wrapping one (i = 0).
  let start = tokens[len - 1].token - TOKEN_SPACE;
  for (let i = 0; i < len; i++) {
    const end = tokens[i].token;
    const last = arcs[arcs.length - 1];
    if (last && last.node === tokens[i].node) last.end = end;
    else arcs.push({ node: tokens[i].node, start, end });
    start = end;
  }
  // The first and last arcs meet across the wrap: join them when one node owns both.
  if (arcs.length > 1 && arcs[0].node === arcs[arcs.length - 1].node) {
    const first = arcs.shift();
    arcs[arcs.length - 1].end = first.end + TOKEN_SPACE;
  }
  return arcs;
}

/**
 * The replicas of `token` per data center, as sdk/ring.ts Ring.replicas places them: for each
 * data center of `replication` ({dc: rf}, in name order), walking clockwise over its members'
 * vnodes from the first at or after `token`, a member on a rack not taken yet first, the
 * ones set aside once every rack has one. `members` are {id, weight, dc?, rack?}; a member
 * without dc is in `default`. (test/ui/ring-math.test.ts checks it against the SDK.)
 * @returns {{dc: string, replicas: string[]}[]}
 */
export function placement(members, vnodesPerNode, replication, token) {
  const out = [];
  for (const dc of Object.keys(replication).sort(compareIds)) {
    const inDc = members.filter((m) => (m.dc ?? 'default') === dc);
    const tokens = ringTokens(inDc, vnodesPerNode);
    const want = Math.min(replication[dc], inDc.length);
    const rackOf = new Map(inDc.map((m) => [m.id, m.rack ?? '']));
    const rackCount = new Set(rackOf.values()).size;
    const replicas = [];
    if (tokens.length > 0 && want > 0) {
      let i = tokens.findIndex((x) => x.token >= token);
      if (i < 0) i = 0;
      const seen = new Set();
      const racks = new Set();
      const aside = [];
      for (let k = 0; k < tokens.length && replicas.length < want; k++, i++) {
        const id = tokens[i % tokens.length].node;
        if (seen.has(id)) continue;
        seen.add(id);
        const rack = rackOf.get(id);
        if (!racks.has(rack)) {
          racks.add(rack);
          replicas.push(id);
          if (racks.size === rackCount) while (aside.length > 0 && replicas.length < want) replicas.push(aside.shift());
        } else if (racks.size === rackCount) replicas.push(id);
        else aside.push(id);
      }
      while (aside.length > 0 && replicas.length < want) replicas.push(aside.shift());
    }
    out.push({ dc, replicas });
  }
  return out;
}
